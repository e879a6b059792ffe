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
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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


def known_datasets() -> list[str]:
    """Names :func:`get_dataset_info` accepts."""
    return list(_SPECS)


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
    """The registry entry of ``name`` with paths under :func:`data_root`. ``train_list``,
    ``val_list`` and ``frames_root`` replace the dataset's defaults (e.g. ``--train_list``).

    Unknown names raise ValueError listing the known ones. ``synthetic`` reads its class count
    from its category.txt, so that file must exist (DatasetFilesError naming the generator).
    """
    spec, root = dataset_layout(name), data_root(root_path)
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


def default_lmdb_path(frames_root: str | os.PathLike) -> Path:
    """Where a dataset's LMDB frame store goes by default: beside its frame folder, the folder's
    path with ``.lmdb`` appended (``.../20bn-something-something-v1.lmdb``)."""
    return Path(os.fspath(frames_root) + '.lmdb')


def check_dataset_files(info: DatasetInfo, splits: tuple[str, ...] = ('train', 'val'),
                        need_categories: bool = False, lmdb_path: str | os.PathLike | None = None) -> None:
    """Raise DatasetFilesError naming every missing path of ``info`` (the frame folder, or the
    LMDB store ``lmdb_path`` when frames are read from one; the list files of ``splits``; the
    category file if ``need_categories``) with the tool that creates it."""
    problems = []  # (what, path, how to create it)
    if lmdb_path is not None:
        if not os.path.exists(lmdb_path):
            problems.append(('LMDB frame store', Path(lmdb_path), f'python tools/frames_to_lmdb.py {info.name}'))
    elif not info.frames_root.is_dir():
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
