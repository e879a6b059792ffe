"""main.py's training step keeps its metrics on the device: they are reduced over processes and read
on the host only at --print-freq steps and at the end of the epoch; a non-finite loss is still caught
before any checkpoint is written, and reported at the step where it first appeared."""
import copy
import re
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

import main
from ops.data_setup import to_model_input
from ops.engine.checkpoint import read_checkpoint
from ops.engine.distributed import DistContext, all_reduce_sum, all_reduce_tensor
from ops.utils import AverageMeter, accuracy, correct_topk, correct_topk_tensor
from opts import parse_args

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLASSES = 7


class Batches:
    """A tiny loader of uint8 clips (N, 3, 4, 4) that records how many batches it has handed out."""

    def __init__(self, sizes, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.batches = [(torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g),
                         torch.randint(0, CLASSES, (n,), generator=g)) for n in sizes]
        self.drawn = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.drawn += 1
            yield batch


class Lines:
    """Stands in for RunLogger: keeps the text lines."""

    def __init__(self):
        self.lines = []

    def line(self, text):
        self.lines.append(text)


class NaNFrom(torch.nn.Module):
    """Wraps a model; its output is NaN from training step ``bad`` (0-based) on."""

    def __init__(self, model, bad):
        super().__init__()
        self.model, self.bad, self.calls = model, bad, 0

    def forward(self, x):
        out = self.model(x)
        self.calls += 1
        return out * float('nan') if self.calls > self.bad else out


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, CLASSES))


def step_args(print_freq):
    return SimpleNamespace(input_mean=MEAN, input_std=STD, iter_size=1, clip_gradient=None,
                           print_freq=print_freq)


def one_epoch(model, loader, print_freq, epoch=0, logger=None):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    logger = logger or Lines()
    return main.train_one_epoch(model, loader, optimizer, None, epoch, 0.1, step_args(print_freq), DistContext(),
                                logger, None), optimizer


def test_correct_topk_tensor_and_the_int_api_agree():
    output = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    target = torch.tensor([1, 2, 0, 1])
    counts = correct_topk_tensor(output, target, (1, 2, 5))
    assert counts.dtype == torch.int64 and counts.device == output.device
    assert counts.tolist() == [1, 3, 4]  # k beyond the class count means all classes
    assert correct_topk(output, target, (1, 2, 5)) == [1, 3, 4]
    assert all(isinstance(c, int) for c in correct_topk(output, target, (1, 2)))
    assert accuracy(output, target, (1, 2)) == pytest.approx([25.0, 75.0])
    assert correct_topk_tensor(output[:0], target[:0], (1, 5)).tolist() == [0, 0]


def test_all_reduce_tensor_single_process_is_identity():
    t = torch.tensor([1.0, 2.0])
    assert all_reduce_tensor(t, DistContext(), 'min') is t
    assert all_reduce_sum([1.0, 2], DistContext()) == [1.0, 2]


def _reduce_worker(rank, world_size, init_file, results):
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                                         world_size=world_size)
    try:
        ctx = DistContext(rank=rank, world_size=world_size)
        t = torch.tensor([1.0 + rank, 10.0 * rank], dtype=torch.float64)
        bad = torch.tensor(7 - rank, dtype=torch.int64)
        summed, low = all_reduce_tensor(t, ctx, 'sum'), all_reduce_tensor(bad, ctx, 'min')
        results[rank] = (summed.tolist(), int(low), t.tolist(), all_reduce_sum([rank, 1], ctx))
    finally:
        torch.distributed.destroy_process_group()


def test_all_reduce_tensor_over_two_gloo_processes(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_reduce_worker, args=(2, str(tmp_path / 'init'), results), nprocs=2)
        results = dict(results)
    for rank in (0, 1):
        summed, low, own, listed = results[rank]
        assert summed == [3.0, 10.0] and low == 6 and listed == [1.0, 2.0]
        assert own == [1.0 + rank, 10.0 * rank]  # the input is left as it was


def test_metrics_are_read_only_at_print_points(monkeypatch):
    """--print-freq beyond the epoch: reduced and read at step 0 (``i % print_freq == 0``, as
    before) and at the epoch end, nowhere in between."""
    loader = Batches([4] * 6)
    reduced_at, read_at = [], []
    reduce = main.all_reduce_tensor

    def counting_reduce(t, ctx, op='sum'):
        reduced_at.append(loader.drawn)
        return reduce(t, ctx, op)

    monkeypatch.setattr(main, 'all_reduce_tensor', counting_reduce)
    for name in ('item', 'tolist', '__bool__', '__float__', '__int__', '__index__'):
        method = getattr(torch.Tensor, name)

        def reading(self, *a, _method=method, **kw):
            read_at.append(loader.drawn)
            return _method(self, *a, **kw)
        monkeypatch.setattr(torch.Tensor, name, reading)
    logger = Lines()
    one_epoch(tiny_model(), loader, print_freq=1000, logger=logger)
    monkeypatch.undo()
    assert sorted(set(reduced_at)) == [1, 6] and len(reduced_at) == 4  # metrics (sum) + first bad step (min)
    assert set(read_at) == {1, 6}
    assert [line.split(',')[0] for line in logger.lines] == ['Epoch: [0][0/6]', 'Epoch: [0][5/6]']


@pytest.mark.parametrize('print_freq, bad, noticed', [(1000, 2, 5), (2, 3, 4), (1, 2, 2)])
def test_nan_loss_names_the_step_it_first_appeared(print_freq, bad, noticed):
    loader = Batches([4] * 6)
    logger = Lines()
    with pytest.raises(main.NonFiniteLossError) as err:
        one_epoch(NaNFrom(tiny_model(), bad), loader, print_freq=print_freq, epoch=3, logger=logger)
    assert str(err.value) == (f'Loss is not finite at epoch 3, step {bad}/6: training stopped; the last good '
                              'checkpoint is left as it was. Try a lower --lr or --gd.')
    assert loader.drawn == noticed + 1  # caught at the first print point at or after the bad step
    assert not any('nan' in line for line in logger.lines)  # no line reports the bad window


def test_nan_loss_in_a_run_writes_no_checkpoint(tmp_path, synthetic_root, monkeypatch):
    """A whole run (in this process): NaN from step 2 of epoch 1 stops it at that epoch's end with
    the step named; only epoch 0's checkpoint was ever written."""
    real_pan, steps = main.PAN, 4  # 16 videos, batch 4

    def pan_with_nan(*args, **kwargs):
        model = real_pan(*args, **kwargs)
        forward, seen = model.forward, [0]

        def nan_forward(x):
            out = forward(x)
            if model.training:
                seen[0] += 1
                if seen[0] > steps + 2:
                    out = out * float('nan')
            return out
        model.forward = nan_forward
        return model

    saved = []
    save = main.RunCheckpoints.save
    monkeypatch.setattr(main, 'PAN', pan_with_nan)

    def recording_save(self, model, optimizer, scaler, epoch, *rest, **kwargs):
        saved.append(epoch)
        save(self, model, optimizer, scaler, epoch, *rest, **kwargs)

    monkeypatch.setattr(main.RunCheckpoints, 'save', recording_save)
    args = parse_args(['synthetic', 'RGB', '--arch', 'resnet18', '--pretrain', 'scratch', '--num_segments', '2',
                       '--input_size', '32', '-b', '4', '-j', '0', '--epochs', '3', '--print-freq', '100',
                       '--root_path', str(synthetic_root), '--root_log', str(tmp_path / 'log'),
                       '--root_model', str(tmp_path / 'checkpoint')])
    with pytest.raises(main.NonFiniteLossError, match=r'^Loss is not finite at epoch 1, step 2/4: '):
        main.run(args, DistContext())
    assert saved == [1]  # epoch 0's; none for epoch 1
    assert read_checkpoint(str(next((tmp_path / 'checkpoint').rglob('ckpt.pth.tar'))))['epoch'] == 1


@pytest.mark.parametrize('print_freq', [1, 3, 1000])
def test_epoch_metrics_equal_the_per_step_reads(print_freq):
    """The returned averages (and the trained weights) are those of the old step, which read
    loss.item() and correct_topk on every step; the log line's 'val' is over the steps since the
    last print point."""
    sizes = [5, 3, 4, 6, 2, 4, 5]
    model = tiny_model()
    reference = copy.deepcopy(model)
    logger = Lines()
    result, _ = one_epoch(model, Batches(sizes), print_freq=print_freq, logger=logger)

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    losses, top1, top5 = AverageMeter(), AverageMeter(), AverageMeter()
    window = [0.0, 0, 0, 0]  # loss * n, n, correct@1, correct@5 since the last print point
    for i, (clips, target) in enumerate(Batches(sizes)):
        output = reference(to_model_input(clips, MEAN, STD, torch.device('cpu')))
        loss = F.cross_entropy(output.float(), target)
        loss.backward()
        n = target.size(0)
        c1, c5 = correct_topk(output.detach(), target, (1, 5))
        losses.update(loss.item(), n)
        top1.update(100.0 * c1 / n, n)
        top5.update(100.0 * c5 / n, n)
        window = [w + v for w, v in zip(window, (loss.item() * n, n, c1, c5))]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i % print_freq == 0 or i + 1 == len(sizes):
            loss_sum, count, c1, c5 = window
            line = next(x for x in logger.lines if x.startswith(f'Epoch: [0][{i}/{len(sizes)}]'))
            shown = re.search(r'Loss (\S+) \((\S+)\)\tPrec@1 (\S+) \((\S+)\)\tPrec@5 (\S+) \((\S+)\)', line)
            assert [float(v) for v in shown.groups()] == pytest.approx(
                [round(loss_sum / count, 4), round(losses.avg, 4), round(100.0 * c1 / count, 3),
                 round(top1.avg, 3), round(100.0 * c5 / count, 3), round(top5.avg, 3)], abs=1e-4)
            window = [0.0, 0, 0, 0]

    assert result['loss'] == pytest.approx(losses.avg, rel=1e-12)
    assert result['top1'] == pytest.approx(top1.avg, rel=1e-12)
    assert result['top5'] == pytest.approx(top5.avg, rel=1e-12)
    assert 0 < result['top1'] < 100 and 0 < result['top5'] < 100  # a case where the counts matter
    for got, want in zip(model.parameters(), reference.parameters()):
        assert torch.equal(got, want)


def test_validate_sums_on_the_device_and_reads_once(monkeypatch):
    loader = Batches([3, 4, 1])
    model = tiny_model().eval()
    calls = []
    reduce = main.all_reduce_tensor

    def counting_reduce(t, ctx, op='sum'):
        calls.append(op)
        return reduce(t, ctx, op)

    monkeypatch.setattr(main, 'all_reduce_tensor', counting_reduce)
    result = main.validate(model, loader, 0, step_args(1), DistContext(), Lines(), None)
    assert calls == ['sum']
    outputs = [model(to_model_input(c, MEAN, STD, torch.device('cpu'))).detach() for c, _ in loader.batches]
    targets = [t for _, t in loader.batches]
    output, target = torch.cat(outputs), torch.cat(targets)
    assert result['loss'] == pytest.approx(F.cross_entropy(output, target).item(), rel=1e-6)
    assert result['top1'] == pytest.approx(accuracy(output, target)[0])


def test_fp16_autocast_with_a_grad_scaler_on_the_cpu():
    """--amp --amp_dtype fp16 runs the grad-scaler path (the one a GPU without bf16 takes) on the
    CPU: steps whose fp16 gradients overflow are skipped and the scale backs off; the result is
    that of autocast + GradScaler written out by hand."""
    from ops.engine.precision import amp_settings
    dtype, needs_scaler = amp_settings(True, torch.device('cpu'), 'fp16')
    assert (dtype, needs_scaler) == (torch.float16, True)
    start = 2.0 ** 22  # fp16 gradients of a loss this large overflow: the first steps are skipped
    model, sizes = tiny_model(), [4] * 8
    reference = copy.deepcopy(model)
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler('cpu', init_scale=start, growth_interval=1000)
    main.train_one_epoch(model, Batches(sizes), optimizer, scaler, 0, 0.1, step_args(1000), DistContext(),
                         Lines(), dtype)

    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    ref_scaler = torch.amp.GradScaler('cpu', init_scale=start, growth_interval=1000)
    for clips, target in Batches(sizes):
        with torch.autocast('cpu', dtype=torch.float16):
            loss = F.cross_entropy(reference(to_model_input(clips, MEAN, STD, torch.device('cpu'))).float(), target)
        ref_scaler.scale(loss).backward()
        ref_scaler.unscale_(ref_opt)
        ref_scaler.step(ref_opt)
        ref_scaler.update()
        ref_opt.zero_grad(set_to_none=True)
    assert scaler.get_scale() == ref_scaler.get_scale() < start  # it backed off
    for got, want, before in zip(model.parameters(), reference.parameters(), initial):
        assert torch.equal(got, want)
        assert not torch.equal(got, before)  # and then stepped
