"""A dataset of your own: the description file that makes ``NAME`` a dataset with no code edited.

``tools/prepare_dataset.py VIDEOS --name NAME`` writes ``ROOT/NAME/dataset.json`` beside the lists
and ``category.txt`` it makes; :func:`ops.dataset_config.get_dataset_info` reads it for any name
that is not built in. Its keys::

    {
      "pan_dataset": 1,                          the format's version
      "num_class": 3,                            classes (category.txt must list as many)
      "categories": "category.txt",              class names, one a line (optional)
      "train_list": "train_videofolder.txt",     the list files
      "val_list": "val_videofolder.txt",
      "clips_root": "/data/my_videos",           where relative list paths point (default ".")
      "image_tmpl": "img_{:05d}.jpg",            frame names of frame-folder clips; null: each
                                                 folder's numbered frames, whatever their name
      "flip": true,                              horizontal flips allowed in training
      ...                                        anything else is kept for the record (source, split)
    }

Paths in the file are relative to the file's folder (``ROOT/NAME``) or absolute; paths in the
lists are relative to ``clips_root`` or absolute. One ``dataset.json`` is the whole dataset: copy
or move ``ROOT/NAME`` with its clips (clips_root relative) and it still reads.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import InputError

DESCRIPTION_FILE = 'dataset.json'
FORMAT_KEY = 'pan_dataset'
FORMAT_VERSION = 1


class DescriptionError(InputError):
    """A description file that does not read; the message names the file and the key."""


@dataclass(frozen=True)
class DatasetDescription:
    """What ``dataset.json`` says, its paths resolved against the file's folder."""
    path: Path
    num_class: int
    train_list: Path
    val_list: Path
    categories: Path | None
    clips_root: Path
    image_tmpl: str | None
    flip: bool


def description_path(root: str | os.PathLike, name: str) -> Path:
    """Where the description of dataset ``name`` lives under the data root."""
    return Path(root) / name / DESCRIPTION_FILE


def _key(data: dict, key: str, kind: type | tuple[type, ...], path: Path, default: Any = ...) -> Any:
    """``data[key]`` checked to be of ``kind``; a missing required key or a wrong type names both."""
    if key not in data:
        if default is ...:
            raise DescriptionError(f'{path}: missing key {key!r}')
        return default
    value, kinds = data[key], (kind if isinstance(kind, tuple) else (kind,))
    # JSON's true / false are ints to Python: neither a count nor a path
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        want = ' or '.join('null' if k is type(None) else k.__name__ for k in kinds)
        raise DescriptionError(f'{path}: key {key!r} must be {want}, got {json.dumps(value)}')
    return value


def _under(folder: Path, value: str) -> Path:
    """A path of the description file: relative to its folder unless absolute."""
    return folder / os.path.expanduser(value)


def read_description(path: str | os.PathLike) -> DatasetDescription:
    """Read and check a description file. DescriptionError names the file and the key at fault
    (missing, of the wrong type, a template that does not format a frame number)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DescriptionError(f'{path}: not a readable JSON description ({err})') from None
    if not isinstance(data, dict):
        raise DescriptionError(f'{path}: expected a JSON object of keys, got {type(data).__name__}')
    version = _key(data, FORMAT_KEY, int, path, FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise DescriptionError(f'{path}: key {FORMAT_KEY!r} is {version}; this code reads version '
                               f'{FORMAT_VERSION} (update the project)')
    num_class = _key(data, 'num_class', int, path)
    if num_class < 1:
        raise DescriptionError(f"{path}: key 'num_class' must be 1 or more, got {num_class}")
    folder = path.parent
    categories = _key(data, 'categories', (str, type(None)), path, 'category.txt')
    image_tmpl = _key(data, 'image_tmpl', (str, type(None)), path, None)
    if image_tmpl is not None:
        try:
            image_tmpl.format(1)
        except (ValueError, IndexError, KeyError) as err:
            raise DescriptionError(f"{path}: key 'image_tmpl' {image_tmpl!r} does not format a frame number "
                                   f'({err})') from None
    return DatasetDescription(
        path=path, num_class=num_class,
        train_list=_under(folder, _key(data, 'train_list', str, path)),
        val_list=_under(folder, _key(data, 'val_list', str, path)),
        categories=_under(folder, categories) if categories else None,
        clips_root=_under(folder, _key(data, 'clips_root', str, path, '.')),
        image_tmpl=image_tmpl, flip=_key(data, 'flip', bool, path))


def description_text(fields: dict[str, Any]) -> str:
    """The text of a description file holding ``fields`` (the format's version first, keys in the
    given order): the same fields always give the same bytes."""
    return json.dumps({FORMAT_KEY: FORMAT_VERSION, **fields}, indent=2, ensure_ascii=False) + '\n'
