"""Dataset registry: classes, list files, frame folders and frame names of each dataset.

Everything lives under one data root: ``--root_path`` if given, else ``$PAN_DATA_ROOT``, else
``./data``. The layout is the TSM one::

    <root>/something/v1/20bn-something-something-v1/<video>/00001.jpg   frames ({:05d}.jpg)
    <root>/something/v1/{train,val}_videofolder.txt                    list files
    <root>/something/v1/category.txt                                   class names, one a line
    <root>/something/v2/20bn-something-something-v2-frames/<video>/000001.jpg  ({:06d}.jpg)
    <root>/something/v2/{train,val}_videofolder.txt, category.txt
    <root>/jester/20bn-jester-v1/<video>/00001.jpg, jester/{train,val}_videofolder.txt, category.txt
    <root>/kinetics/images/<video>/img_00001.jpg, kinetics/labels/{train,val}_videofolder.txt,
                                                  kinetics/labels/category.txt
    <root>/ucf101/images/<video>/img_00001.jpg, ucf101/file_list/ucf101_rgb_{train,val}_split_1.txt,
                                                ucf101/category.txt
    <root>/hmdb51/images/<video>/img_00001.jpg, hmdb51/file_list/hmdb51_rgb_{train,val}_split_1.txt,
                                                hmdb51/category.txt
    <root>/synthetic/frames/<video>/00001.jpg, synthetic/{train,val}_videofolder.txt,
                                               synthetic/category.txt   (tools/gen_synthetic.py)

A list file has one ``<video folder or video file> <num frames> <label>`` line per video. Its
paths are resolved in one place, :meth:`DatasetInfo.resolve`: a relative path is taken under the
dataset's frame folder above (``ROOT/kinetics/images/<path>`` for kinetics, videos as well as
frame folders), an absolute path as it is. For video files ``num frames`` may be 0 (counted from
the file). The class count is the number of names in the dataset's category.txt when it exists
(so a subset has as many classes as its category file lists); without one, the registry's fixed
count applies (``synthetic`` requires its category.txt).

Any other name is a dataset of your own: ``ROOT/<name>/dataset.json``, written by
``tools/prepare_dataset.py`` (:mod:`ops.dataset_description`), says where its lists, class names
and clips are, its class count, frame names and whether it may be flipped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ops.dataset_description import description_path, read_description
from ops.errors import InputError

ENV_ROOT = 'PAN_DATA_ROOT'
DEFAULT_ROOT = './data'


class DatasetFilesError(FileNotFoundError):
    """Files a dataset needs are missing; the message names each path and how to create it."""


@dataclass(frozen=True)
class DatasetLayout:
    """Where one dataset's files sit under the data root (relative paths), as the data
    preparation tools write them and the loaders read them.

    ``videos``: where the preparation tools look for the raw videos they extract frames from
    ('' for datasets that ship frames). ``make_frames`` / ``make_lists``: how the user creates
    the frames and the lists, for the error that reports them missing.
    """
    num_class: int | None  # classes when there is no category.txt (None: the file is required)
    frames: str
    train_list: str
    val_list: str
    categories: str
    image_tmpl: str
    flip: bool
    make_frames: str
    make_lists: str
    videos: str = ''

    @property
    def lists_dir(self) -> str:
        """The folder of the list files and category.txt."""
        return str(Path(self.train_list).parent)


_NO_LIST_TOOL = ('no tool in this project; write one "<video folder> <num frames> <label>" line per video '
                 '(see the README)')
_NO_FRAME_TOOL = 'no tool in this project; extract frames as img_00001.jpg, ... per video (see the README)'
_SYNTH = 'python tools/gen_synthetic.py --root_path <root>'
_SPECS: dict[str, DatasetLayout] = {
    'something': DatasetLayout(174, 'something/v1/20bn-something-something-v1', 'something/v1/train_videofolder.txt',
                       'something/v1/val_videofolder.txt', 'something/v1/category.txt', '{:05d}.jpg', False,
                       'the official Something-Something V1 download (it ships JPEG frames)',
                       'python tools/gen_label_sthv1.py'),
    'somethingv2': DatasetLayout(174, 'something/v2/20bn-something-something-v2-frames',
                         'something/v2/train_videofolder.txt', 'something/v2/val_videofolder.txt',
                         'something/v2/category.txt', '{:06d}.jpg', False,
                         'python tools/vid2img_sthv2.py', 'python tools/gen_label_sthv2.py',
                         videos='something/v2/20bn-something-something-v2'),
    'jester': DatasetLayout(27, 'jester/20bn-jester-v1', 'jester/train_videofolder.txt', 'jester/val_videofolder.txt',
                    'jester/category.txt', '{:05d}.jpg', False,
                    'the official Jester download (it ships JPEG frames)', _NO_LIST_TOOL),
    'kinetics': DatasetLayout(400, 'kinetics/images', 'kinetics/labels/train_videofolder.txt',
                      'kinetics/labels/val_videofolder.txt', 'kinetics/labels/category.txt', 'img_{:05d}.jpg',
                      True, 'python tools/vid2img_kinetics.py', 'python tools/gen_label_kinetics.py',
                      videos='kinetics/videos'),
    'ucf101': DatasetLayout(101, 'ucf101/images', 'ucf101/file_list/ucf101_rgb_train_split_1.txt',
                    'ucf101/file_list/ucf101_rgb_val_split_1.txt', 'ucf101/category.txt', 'img_{:05d}.jpg',
                    True, _NO_FRAME_TOOL, _NO_LIST_TOOL),
    'hmdb51': DatasetLayout(51, 'hmdb51/images', 'hmdb51/file_list/hmdb51_rgb_train_split_1.txt',
                    'hmdb51/file_list/hmdb51_rgb_val_split_1.txt', 'hmdb51/category.txt', 'img_{:05d}.jpg',
                    True, _NO_FRAME_TOOL, _NO_LIST_TOOL),
    # the classes of the synthetic set are motion directions, so flipping would change labels
    'synthetic': DatasetLayout(None, 'synthetic/frames', 'synthetic/train_videofolder.txt',
                       'synthetic/val_videofolder.txt', 'synthetic/category.txt', '{:05d}.jpg', False,
                       _SYNTH, _SYNTH),
}


OWN_LMDB_NAME = 'frames.lmdb'
PREPARE_TOOL = 'python tools/prepare_dataset.py VIDEOS --name {name} --root_path <root>'
_OWN_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')  # a folder name, a part of run names


def known_datasets() -> list[str]:
    """The built-in names; any other name is read from its description file."""
    return list(_SPECS)


def dataset_help() -> str:
    """The help of the entry points' ``dataset`` argument."""
    return (f'a built-in dataset ({", ".join(_SPECS)}; ops/dataset_config.py) or one of your own, '
            'described by ROOT/NAME/dataset.json (tools/prepare_dataset.py makes it)')


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a dataset of the registry (a dataset of your own may not take it)."""
    return name in _SPECS


def check_own_name(name: str) -> str:
    """``name`` if it can name a dataset of your own (a plain folder name, not a built-in one),
    else InputError saying why."""
    if is_builtin(name):
        raise InputError(f'dataset name {name!r} is built in ({", ".join(_SPECS)}); choose another name')
    if not _OWN_NAME.match(name):
        raise InputError(f'dataset name {name!r}: use letters, digits, "_", "-" and "." (a folder name), '
                         'starting with a letter or digit')
    return name


def dataset_layout(name: str) -> DatasetLayout:
    """The registry's layout of ``name``; unknown names raise ValueError listing the known ones."""
    if name not in _SPECS:
        raise ValueError(f'unknown dataset {name!r}; known datasets: {", ".join(_SPECS)}')
    return _SPECS[name]


def data_root(root_path: str | os.PathLike | None = None) -> Path:
    """``root_path`` if given, else ``$PAN_DATA_ROOT``, else ``./data``."""
    chosen = root_path if root_path not in (None, '') else (os.environ.get(ENV_ROOT) or DEFAULT_ROOT)
    return Path(chosen).expanduser()


@dataclass
class DatasetInfo:
    """Where one dataset's files are and how to read them.

    ``flip`` is False where labels depend on direction (something, somethingv2, jester, synthetic).
    ``make`` maps each file role (``frames``, ``lists``) to how the user creates it.
    """
    name: str
    num_class: int
    frames_root: Path
    train_list: Path
    val_list: Path
    category_file: Path | None
    image_tmpl: str
    flip: bool
    root: Path = Path(DEFAULT_ROOT)
    make: dict[str, str] = field(default_factory=dict)
    description: Path | None = None  # the dataset.json of a dataset of your own

    def class_names(self) -> list[str] | None:
        """The names of the dataset's classes from its category file, None without one (or when it
        lists another count than :attr:`num_class`)."""
        if self.category_file is None or not self.category_file.is_file():
            return None
        names = read_categories(self.category_file)
        return names if len(names) == self.num_class else None

    def lmdb_path(self) -> Path:
        """Where the dataset's LMDB frame store goes by default: beside its frame folder
        (:func:`default_lmdb_path`), or for a dataset of your own in its folder, ``ROOT/NAME/frames.lmdb``
        (not beside your clips)."""
        if self.description is not None:
            return self.description.parent / OWN_LMDB_NAME
        return default_lmdb_path(self.frames_root)

    def resolve(self, list_path: str) -> Path:
        """Where a list file's path column points: under :attr:`frames_root` when relative."""
        return resolve_list_path(self.frames_root, list_path)


def resolve_list_path(frames_root: str | os.PathLike, list_path: str) -> Path:
    """A list file's path column (frame folder or video file) resolved against the dataset's frame
    folder; absolute paths are kept. The one place list paths are resolved."""
    return Path(frames_root) / list_path


def read_categories(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (label = line number from 0). Trailing blank lines are ignored;
    a blank line among the names is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFilesError(f'missing category file: {path}')
    names = [line.strip() for line in path.read_text(encoding='utf-8').splitlines()]
    while names and not names[-1]:
        names.pop()
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise InputError(f'{path}: blank class name on line(s) {blank[:5]}')
    if not names:
        raise InputError(f'{path}: no class names')
    return names


def _missing_message(what: str, path: Path, how: str) -> str:
    return f'  {what}: {path}\n    create it with: {how}'


def _missing_head(dataset: str, root: Path | None, missing: list[tuple[str, Path]]) -> str:
    """The first line of a DatasetFilesError: it names the first missing path (and counts the others)."""
    what, path = missing[0]
    more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
    where = f' (data root {root})' if root is not None else ''
    return f'dataset {dataset!r}{where} is missing its {what} {path}{more}:\n'


def get_dataset_info(name: str, root_path: str | os.PathLike | None = None, *,
                     train_list: str | os.PathLike | None = None, val_list: str | os.PathLike | None = None,
                     frames_root: str | os.PathLike | None = None) -> DatasetInfo:
    """The registry entry of ``name`` with paths under :func:`data_root`, or for any other name the
    dataset its ``ROOT/<name>/dataset.json`` describes. ``train_list``, ``val_list`` and
    ``frames_root`` replace the dataset's defaults (e.g. ``--train_list``).

    A name that is neither built in nor described raises InputError (a ValueError) listing the
    built-in ones and the tool that describes a dataset; a description that does not read raises
    :class:`~ops.dataset_description.DescriptionError` naming its file and key. ``synthetic`` reads
    its class count from its category.txt, so that file must exist (DatasetFilesError naming the
    generator).
    """
    root = data_root(root_path)
    if not is_builtin(name):
        return _own_dataset_info(name, root, train_list, val_list, frames_root)
    spec = dataset_layout(name)
    categories = root / spec.categories
    # The category file, when there is one, says how many classes this copy of the dataset has
    # (a 3-class subset of Kinetics has 3); the registry's count is for datasets without one.
    if categories.is_file():
        num_class = len(read_categories(categories))
    elif spec.num_class is not None:
        num_class = spec.num_class
    else:
        raise DatasetFilesError(_missing_head(name, None, [('category file', categories)])
                                + _missing_message('category file', categories, spec.make_lists))
    return DatasetInfo(
        name=name, num_class=num_class,
        frames_root=Path(frames_root) if frames_root else root / spec.frames,
        train_list=Path(train_list) if train_list else root / spec.train_list,
        val_list=Path(val_list) if val_list else root / spec.val_list,
        category_file=categories, image_tmpl=spec.image_tmpl, flip=spec.flip, root=root,
        make={'frames': spec.make_frames, 'lists': spec.make_lists})


def _own_dataset_info(name: str, root: Path, train_list, val_list, frames_root) -> DatasetInfo:
    """The DatasetInfo of a dataset of your own, from ``ROOT/<name>/dataset.json``."""
    path = description_path(root, name) if _OWN_NAME.match(name) else None
    if path is None or not path.is_file():
        where = f'no description file {path}' if path is not None else 'not a folder name'
        raise InputError(f'unknown dataset {name!r}: {where}, and not a built-in dataset '
                         f'({", ".join(_SPECS)}); make a dataset of your own with '
                         + PREPARE_TOOL.format(name=name).replace('<root>', str(root)))
    desc = read_description(path)
    if desc.categories is not None and desc.categories.is_file():
        listed = len(read_categories(desc.categories))
        if listed != desc.num_class:
            raise InputError(f"{path}: key 'num_class' is {desc.num_class} but {desc.categories} lists "
                             f'{listed} classes; make them agree (run tools/prepare_dataset.py again)')
    how = PREPARE_TOOL.format(name=name).replace('<root>', str(root))
    return DatasetInfo(
        name=name, num_class=desc.num_class,
        frames_root=Path(frames_root) if frames_root else desc.clips_root,
        train_list=Path(train_list) if train_list else desc.train_list,
        val_list=Path(val_list) if val_list else desc.val_list,
        category_file=desc.categories, image_tmpl=desc.image_tmpl, flip=desc.flip, root=root,
        make={'frames': f'{how} (the clips folder it recorded in {path})', 'lists': how}, description=path)


def default_lmdb_path(frames_root: str | os.PathLike) -> Path:
    """Where a dataset's LMDB frame store goes by default: beside its frame folder, the folder's
    path with ``.lmdb`` appended (``.../20bn-something-something-v1.lmdb``)."""
    return Path(os.fspath(frames_root) + '.lmdb')


FRAMES_NEEDED = 'frames'  # a frame-folder line reads under the frame folder
VIDEOS_NEEDED = 'videos'  # only video-file lines do (relative paths)


def check_dataset_files(info: DatasetInfo, splits: tuple[str, ...] = ('train', 'val'),
                        need_categories: bool = False, lmdb_path: str | os.PathLike | None = None,
                        need_frames: str | None = FRAMES_NEEDED) -> None:
    """Raise DatasetFilesError naming every missing path of ``info`` (the frame folder, or the
    LMDB store ``lmdb_path`` when frames are read from one; the list files of ``splits``; the
    category file if ``need_categories``) with the tool that creates it.

    ``need_frames`` says what needs the frame folder: :data:`FRAMES_NEEDED` (frame-folder lines,
    or unknown; an LMDB store stands in for it), :data:`VIDEOS_NEEDED` (relative video-file paths
    resolve under it) or None (nothing does: lists of absolute paths need no frame folder)."""
    problems = []  # (what, path, how to create it)
    if lmdb_path is not None:
        if not os.path.exists(lmdb_path):
            problems.append(('LMDB frame store', Path(lmdb_path), f'python tools/frames_to_lmdb.py {info.name}'))
    if not info.frames_root.is_dir():
        if need_frames == VIDEOS_NEEDED:
            problems.append(('folder of the relative video paths', info.frames_root,
                             'put the videos there, or write absolute paths in the lists'))
        elif need_frames == FRAMES_NEEDED and lmdb_path is None:  # a store holds the frame folders
            problems.append(('frame folder', info.frames_root, info.make.get('frames', '?')))
    for split in splits:
        path = {'train': info.train_list, 'val': info.val_list}[split]
        if not path.is_file():
            problems.append((f'{split} list', path, info.make.get('lists', '?')))
    if need_categories and info.category_file is not None and not info.category_file.is_file():
        problems.append(('category file', info.category_file, info.make.get('lists', '?')))
    if problems:
        raise DatasetFilesError(_missing_head(info.name, info.root, [(w, p) for w, p, _ in problems])
                                + '\n'.join(_missing_message(*problem) for problem in problems)
                                + f'\n  (set the root with --root_path or ${ENV_ROOT})')
