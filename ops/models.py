"""PAN: the PA motion front, a 2D backbone with TSM temporal shift, and a VAP or TSN head.

Modalities:
    RGB   one frame per segment, an ordinary 3-channel backbone.
    PA    ``data_length`` frames per segment -> PA maps (``data_length - 1`` channels).
    Lite  the first RGB frame of each segment stacked with its PA maps: a 6-channel backbone.

State-dict keys and optimizer groups are those of the released checkpoints:
``PA.shallow_conv.*``, ``base_model.*`` and, with VAP, ``base_model.fc.{TES,pred}.*``; without VAP,
``new_fc.*``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ops.backbone_registry import scale_size_for
from ops.backbones import add_temporal_modelling, backbone_entry, build_backbone, inflate_first_conv
from ops.modalities import check_modality, frames_per_segment
from ops.PAN_modules import PA, VAP

CONSENSUS_TYPES = ('avg', 'identity')


class PAN(nn.Module):
    """A PAN model for one modality.

    Shapes: input ``(N, num_segments * new_length * 3, H, W)`` (frames in temporal order, each
    segment's ``new_length`` consecutive frames together), output ``(N, num_class)`` logits.

    ``causal_shift``: every temporal shift takes channels from the previous segment only (TSM's
    online shift), so a segment's features depend on no later segment; ``ops.deploy.streaming.OnlinePAN``
    then runs one segment per step. Off by default: the released bidirectional shift.
    """

    def __init__(self, num_class: int, num_segments: int, modality: str, base_model: str = 'resnet101',
                 new_length: int | None = None, consensus_type: str = 'avg', before_softmax: bool = True,
                 dropout: float = 0.8, img_feature_dim: int = 256, crop_num: int = 1, partial_bn: bool = True,
                 print_spec: bool = True, pretrain: str = 'imagenet', is_shift: bool = False, shift_div: int = 8,
                 shift_place: str = 'blockres', fc_lr5: bool = False, temporal_pool: bool = False,
                 non_local: bool = False, data_length: int = 4, has_VAP: bool = False,
                 causal_shift: bool = False) -> None:
        super().__init__()
        check_modality(modality)
        if consensus_type not in CONSENSUS_TYPES:
            raise NotImplementedError(f"consensus_type '{consensus_type}' is not implemented; use one of {CONSENSUS_TYPES}")
        if non_local:
            raise NotImplementedError('non_local=True is not implemented: no released PAN model uses non-local blocks')
        if not before_softmax and consensus_type != 'avg':
            raise ValueError('before_softmax=False only makes sense with avg consensus')
        self.modality = modality
        self.num_segments = num_segments
        self.base_model_name = base_model
        self.consensus_type = consensus_type
        self.before_softmax = before_softmax
        self.dropout = dropout
        self.img_feature_dim = img_feature_dim
        self.crop_num = crop_num
        self.pretrain = pretrain
        self.is_shift = is_shift
        self.shift_div = shift_div
        self.shift_place = shift_place
        self.fc_lr5 = fc_lr5
        self.temporal_pool = temporal_pool
        self.non_local = non_local
        self.data_length = data_length
        self.has_VAP = has_VAP
        self.causal_shift = causal_shift
        self.new_length = new_length if new_length is not None else frames_per_segment(modality, data_length)
        if modality != 'RGB' and self.new_length != data_length:
            raise ValueError(f'{modality} reads data_length={data_length} frames per segment; '
                             f'new_length={self.new_length} disagrees')

        # PA is registered before the backbone: it is the model's first conv (optimizer policies,
        # state_dict order), as in the release.
        if modality in ('PA', 'Lite'):
            self.PA = PA(data_length)
        self.base_model = build_backbone(base_model, pretrain)
        add_temporal_modelling(self.base_model, base_model, num_segments, is_shift, shift_div, shift_place,
                               temporal_pool, causal_shift)
        if modality == 'Lite':
            inflate_first_conv(self.base_model, 6)
        elif modality == 'PA' and data_length - 1 != 3:
            inflate_first_conv(self.base_model, data_length - 1)
        self.feature_dim = self._prepare_head(num_class)
        self._enable_pbn = partial_bn
        if print_spec:
            print(f'PAN: {modality} on {base_model}, {num_segments} segments x {self.new_length} frames, '
                  f"head {'VAP' if has_VAP else 'TSN ' + consensus_type}, shift {is_shift} "
                  f"({shift_place}, 1/{shift_div}{', causal' if causal_shift else ''}), dropout {dropout}")

    # -- construction ---------------------------------------------------------------------
    @property
    def head_segments(self) -> int:
        """Segments that reach the head (halved by temporal pooling)."""
        return self.num_segments // 2 if self.temporal_pool else self.num_segments

    def _prepare_head(self, num_class: int) -> int:
        name = self.base_model.last_layer_name
        last = getattr(self.base_model, name)
        feature_dim = last.in_features if isinstance(last, nn.Linear) else last[-1].in_features
        if self.has_VAP:
            setattr(self.base_model, name, VAP(self.head_segments, feature_dim, num_class, self.dropout))
            self.new_fc = None
        elif self.dropout == 0:
            fc = nn.Linear(feature_dim, num_class)
            nn.init.normal_(fc.weight, 0, 0.001)
            nn.init.zeros_(fc.bias)
            setattr(self.base_model, name, fc)
            self.new_fc = None
        else:
            setattr(self.base_model, name, nn.Dropout(p=self.dropout))
            self.new_fc = nn.Linear(feature_dim, num_class)
            nn.init.normal_(self.new_fc.weight, 0, 0.001)
            nn.init.zeros_(self.new_fc.bias)
        return feature_dim

    # -- input statistics used by the data pipeline (from the backbone's registry entry) ----
    @property
    def crop_size(self) -> int:
        return backbone_entry(self.base_model_name).input_size

    @property
    def scale_size(self) -> int:
        return scale_size_for(self.crop_size)

    @property
    def input_mean(self) -> list[float]:
        return list(backbone_entry(self.base_model_name).input_mean)

    @property
    def input_std(self) -> list[float]:
        return list(backbone_entry(self.base_model_name).input_std)

    # -- batch norm freezing ---------------------------------------------------------------
    def partialBN(self, enable: bool) -> None:
        """Freeze every BatchNorm but the first one while training (TSN's partial BN)."""
        self._enable_pbn = enable

    def train(self, mode: bool = True) -> 'PAN':
        super().train(mode)
        if self._enable_pbn and mode:
            bns = [m for m in self.base_model.modules() if isinstance(m, _BatchNorm)]
            for m in bns[1:]:
                m.eval()
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)
        return self

    # -- optimisation ---------------------------------------------------------------------
    def get_optim_policies(self) -> list[dict]:
        """Parameter groups with lr and weight-decay multipliers, in the release's order.

        The first conv (PA's shallow conv for PA/Lite, which learns from scratch) gets lr x5 and
        bias x10 for PA/Lite; Linear layers (VAP, new_fc) get x5 / x10 when ``fc_lr5``.
        """
        groups = {key: [] for key in ('first_conv_weight', 'first_conv_bias', 'normal_weight', 'normal_bias',
                                      'BN scale/shift', 'custom_ops', 'lr5_weight', 'lr10_bias')}
        seen_conv = seen_bn = 0
        for m in self.modules():
            params = list(m.parameters(recurse=False))
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                seen_conv += 1
                prefix = 'first_conv' if seen_conv == 1 else 'normal'
                groups[f'{prefix}_weight'].append(m.weight)
                if m.bias is not None:
                    groups[f'{prefix}_bias'].append(m.bias)
            elif isinstance(m, nn.Linear):
                groups['lr5_weight' if self.fc_lr5 else 'normal_weight'].append(m.weight)
                if m.bias is not None:
                    groups['lr10_bias' if self.fc_lr5 else 'normal_bias'].append(m.bias)
            elif isinstance(m, _BatchNorm):  # SyncBatchNorm included
                seen_bn += 1
                if not self._enable_pbn or seen_bn == 1:
                    groups['BN scale/shift'].extend(params)
            elif params:
                raise ValueError(f'No learning policy for parameters of {type(m).__name__}')
        motion_stem = self.modality in ('PA', 'Lite')
        mults = {'first_conv_weight': (5 if motion_stem else 1, 1), 'first_conv_bias': (10 if motion_stem else 2, 0),
                 'normal_weight': (1, 1), 'normal_bias': (2, 0), 'BN scale/shift': (1, 0), 'custom_ops': (1, 1),
                 'lr5_weight': (5, 1), 'lr10_bias': (10, 0)}
        return [{'params': groups[name], 'lr_mult': mults[name][0], 'decay_mult': mults[name][1], 'name': name}
                for name in groups]

    # -- forward --------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        want = self.new_length * 3 * self.num_segments
        if x.dim() != 4 or x.size(1) != want:
            raise ValueError(f'PAN({self.modality}) expects input (N, num_segments*new_length*3={want}, H, W), '
                             f'got shape {tuple(x.shape)}')

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone input for each segment. Shapes: ``(N, T*L*3, H, W)`` -> ``(N*T, C, H, W)``,
        C = 3 (RGB), L-1 (PA) or 3+L-1 (Lite)."""
        h, w = x.shape[-2:]
        if self.modality == 'RGB':
            return x.reshape(-1, 3, h, w)
        pa = self.PA(x.reshape(-1, 3, h, w))
        if self.modality == 'PA':
            return pa
        first_rgb = x.reshape(-1, self.new_length, 3, h, w)[:, 0]
        return torch.cat((first_rgb, pa), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.consensus(self.base_model(self.features(x)))

    def consensus(self, out: torch.Tensor) -> torch.Tensor:
        """What follows the backbone (whose last layer is VAP, TSN's dropout, or its fc).
        Shapes: ``(N, num_class)`` from VAP, else ``(N*T, D)`` per segment -> ``(N, num_class)``."""
        if self.has_VAP:
            return out if self.before_softmax else torch.softmax(out, dim=1)
        if self.new_fc is not None:
            out = self.new_fc(out)
        if not self.before_softmax:
            out = torch.softmax(out, dim=1)
        out = out.reshape(-1, self.head_segments, out.size(-1))
        return out.mean(dim=1) if self.consensus_type == 'avg' else out
