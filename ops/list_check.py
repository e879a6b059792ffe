"""The pre-flight check of a list file: every line a run will read is checked
(:func:`ops.frames.clip_check.check_clip`: the file opens, its frame count is the list's, its first
and last frames read) before the first epoch, in parallel, and every bad line is reported at once.

A run then stops with :class:`BadListLinesError` (an :class:`~ops.errors.InputError`: one
``error:`` message naming the list, then each bad line with its number, file and reason; exit
status 2), or with ``skip_bad`` leaves the bad lines out and says how many. With
``substitute_missing`` a clip that has some readable frame is kept (its unreadable frames will be
substituted); only clips with none are bad.

Videos are checked once: the decodable count and the reading of the ends are kept in each video's
stored index (:mod:`ops.frames.video_index`), so a second run reads them back instead of decoding.
"""
from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from tqdm import tqdm

from ops.errors import InputError
from ops.frames.clip_check import ClipCheck, check_clip
from ops.frames.video_index import INDEX_ENV, INDEX_OFF, index_folder
from ops.frames.video_reader import is_video_file


class BadListLinesError(InputError):
    """Lines of a list file name clips that cannot be read as listed; the message names each."""


@dataclass(frozen=True)
class LineCheck:
    """How a dataset checks its lines before a run reads them: in ``workers`` processes (0: in
    this one); ``skip_bad`` leaves bad lines out instead of stopping. Under torchrun each process
    checks every ``share[1]``-th line from ``share[0]`` (its rank) and ``gather`` (all_gather of
    picklable objects, one per process in rank order) pools the findings, so each line is checked
    once and every process leaves out the same lines."""
    workers: int = 0
    skip_bad: bool = False
    share: tuple[int, int] = (0, 1)
    gather: Callable[[object], list] | None = None


@dataclass(frozen=True)
class BadLine:
    """A line that does not read as listed: ``source`` is ``<list file>:<line>``."""
    source: str
    check: ClipCheck

    def describe(self) -> str:
        line = self.source.rsplit(':', 1)[-1]
        return f'line {line}: {self.check.path}: {self.check.problem}'


@dataclass
class CheckReport:
    """What the check of one list found: lines checked, bad lines (left out when ``skipped``),
    videos among the lines, seconds taken, processes used."""
    list_file: str
    checked: int
    bad: list[BadLine] = field(default_factory=list)
    skipped: bool = False
    videos: int = 0
    seconds: float = 0.0
    workers: int = 0

    def summary(self) -> str:
        """One line for the run's output, e.g. '=> checked 120 lines of train.txt in 2.1 s (2 processes): all
        read as listed'; with skipped lines, the first line of a longer message naming them."""
        how = f'{self.workers} processes' if self.workers > 1 else 'in this process'
        if self.videos:
            folder = index_folder()
            how += f'; {self.videos} video files, ' + (f'indexes kept in {folder}' if folder is not None else
                                                       f'indexes not kept (${INDEX_ENV}={INDEX_OFF})')
        head = f'=> checked {self.checked} lines of {self.list_file} in {self.seconds:.1f} s ({how})'
        if not self.bad:
            return head + ': all read as listed'
        return head + f': left out {len(self.bad)} bad line(s) (--skip_bad):\n' + \
            '\n'.join('  ' + b.describe() for b in self.bad)


def _check_item(item: tuple[str, int, str | None, str | None, str]) -> ClipCheck:
    path, listed, image_tmpl, lmdb_path, lmdb_video = item
    return check_clip(path, listed, image_tmpl, lmdb_path, lmdb_video)


def _single_thread() -> None:
    # a forked checker decodes on one thread, as DataLoader workers do (the parent may run torch)
    import torch
    torch.set_num_threads(1)


def check_items(items: Sequence[tuple], workers: int, desc: str = 'checking list lines') -> list[ClipCheck]:
    """:func:`check_clip` of each ``(path, listed, image_tmpl, lmdb_path, lmdb_video)``, in order,
    over ``workers`` processes (0 or 1: in this process)."""
    bar = dict(total=len(items), desc=desc, leave=False, disable=len(items) < 100)
    if workers <= 1 or len(items) < 2:
        return [_check_item(item) for item in tqdm(items, **bar)]
    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else None
    chunk = max(1, min(16, len(items) // (workers * 8)))
    with multiprocessing.get_context(method).Pool(min(workers, len(items)), initializer=_single_thread) as pool:
        return list(tqdm(pool.imap(_check_item, items, chunksize=chunk), **bar))


def check_records(records: Sequence, full_path: Callable[[object], str], list_file: str,
                  image_tmpl: str | None, lmdb_path: str | None, settings: LineCheck,
                  substitute_missing: bool = False) -> tuple[dict[str, ClipCheck], CheckReport]:
    """Check the clips of ``records`` (:class:`~ops.dataset.VideoRecord`, ``full_path`` giving
    where each is read) and return the check of each by its ``source``, and the report. Bad lines
    raise :class:`BadListLinesError` naming every one, unless ``settings.skip_bad`` (then the
    caller leaves out the report's ``bad`` lines)."""
    start = time.perf_counter()
    rank, world = settings.share
    mine = list(range(rank, len(records), world))
    items = []
    for k in mine:
        r = records[k]
        video = is_video_file(r.path)
        items.append((full_path(r), r.num_frames, None if video else image_tmpl,
                      None if video else lmdb_path, r.path))
    found = dict(zip(mine, check_items(items, settings.workers)))
    if settings.gather is not None and world > 1:
        found = {k: c for part in settings.gather(found) for k, c in part.items()}
    checks = {records[k].source: found[k] for k in range(len(records))}
    bad = [BadLine(r.source, checks[r.source]) for r in records
           if not (checks[r.source].readable if substitute_missing else checks[r.source].ok)]
    report = CheckReport(list_file, len(records), bad, settings.skip_bad,
                         sum(is_video_file(r.path) for r in records), time.perf_counter() - start,
                         max(settings.workers, 1))
    if bad and not settings.skip_bad:
        raise BadListLinesError(
            f'{list_file}: {len(bad)} of {len(records)} line(s) cannot be read as listed:\n'
            + '\n'.join('  ' + b.describe() for b in bad)
            + '\nfix or remove these lines, or pass --skip_bad to leave them out'
            + ('' if substitute_missing else ' (--substitute_missing keeps clips with some readable frames)'))
    return checks, report

