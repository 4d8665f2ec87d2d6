"""The dual-stream residual VQ-VAE of MoGenTS (official ``RVQVAE``), weight-compatible.

Two streams tokenize the same motion:

- **aux** (1D): the whole normalised feature vector per frame, convolved over time
  (``encoder1d``/``decoder1d``), ``T0 / 4`` token steps, one residual code stack per step.
- **ts** (2D): a joint grid ``(T0, J, 12)`` (:func:`motion_to_joint_grid`), padded to ``P`` joint
  slots and convolved as an image over (time, joint slot) (``encoder2d``/``decoder2d``),
  ``T0 / 4 x G`` tokens.

Decoding sums the codes of both streams, mixes the ``G`` spatial codes of each step
(``linear_merge``), decodes both streams, scatters the decoded grid back into a feature vector
(:func:`joint_grid_to_motion`) and fuses the two decoded vectors with ``linear_out``.

Shape symbols: ``B`` batch, ``T0`` frames, ``T = T0 / 4`` token steps, ``W`` feature width (263
HumanML3D, 251 KIT-ML), ``J`` joints (22 / 21), ``P`` padded joint slots (24), ``G = 6`` joint
groups, ``C = 12`` channels per joint slot, ``Q`` quantizer layers, ``q <= Q`` layers present,
``D1``/``D2`` aux/ts code widths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hftrainer_mogents.config import JOINT_CHANNELS, N_JOINT_GROUPS, VQConfig
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.modeling.quantizer import ResidualQuantizer

__all__ = [
    "ROOT_DIMS",
    "FOOT_DIMS",
    "RVQVAE",
    "ResBlock",
    "ResStack",
    "ConvEncoder",
    "ConvDecoder",
    "joints_from_width",
    "motion_to_joint_grid",
    "joint_grid_to_motion",
]

ROOT_DIMS = 4  # root angular velocity, XZ velocity, height
FOOT_DIMS = 4  # foot contacts
# Values of ``vq_norm`` that mean "no normalisation" (opt.txt writes None as the string 'None').
_NO_NORM = (None, "None", "none", "")
_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


# ----------------------------------------------------------------------------- feature layout


def joints_from_width(width: int) -> int:
    """Joints ``J`` of a feature vector of ``width`` dims.

    The layout is root 4 + ric 3(J-1) + rot6d 6(J-1) + velocity 3J + feet 4 = 12J - 1.

    Raises:
        InvalidInputError: ``width`` is not of that form.
    """
    if (width + 1) % JOINT_CHANNELS or width < 2 * JOINT_CHANNELS - 1:
        raise InvalidInputError(
            f"feature width {width} is not 12 * joints - 1 (HumanML3D 263, KIT-ML 251)"
        )
    return (width + 1) // JOINT_CHANNELS


def _feature_bounds(joints: int) -> tuple[int, int, int, int]:
    """End offsets of the ric, rot6d and velocity blocks, and the total width."""
    ric_end = ROOT_DIMS + 3 * (joints - 1)
    rot_end = ric_end + 6 * (joints - 1)
    vel_end = rot_end + 3 * joints
    return ric_end, rot_end, vel_end, vel_end + FOOT_DIMS


def motion_to_joint_grid(motion: Tensor) -> Tensor:
    """The 2D stream's input grid from a normalised feature vector.

    Channels of joint slot ``j``: 0:3 its root-relative position (ric), 3:9 its 6D rotation, 9:12
    its local velocity. Joint 0 has no ric/rotation entries, so its channels 0:9 are zero (the root
    and foot-contact features are not fed to the 2D encoder).

    Args:
        motion: ``(..., W)`` normalised features, ``W = 12J - 1``.

    Returns:
        ``(..., J, 12)``, same dtype and device.
    """
    joints = joints_from_width(motion.shape[-1])
    ric_end, rot_end, vel_end, _ = _feature_bounds(joints)
    ric = motion[..., ROOT_DIMS:ric_end].unflatten(-1, (joints - 1, 3))  # (..., J-1, 3)
    rot = motion[..., ric_end:rot_end].unflatten(-1, (joints - 1, 6))  # (..., J-1, 6)
    vel = motion[..., rot_end:vel_end].unflatten(-1, (joints, 3))  # (..., J, 3)
    pose = F.pad(torch.cat([ric, rot], -1), (0, 0, 1, 0))  # (..., J, 9), joint 0 zero
    return torch.cat([pose, vel], -1)  # (..., J, 12)


def joint_grid_to_motion(grid: Tensor) -> Tensor:
    """Scatter a decoded joint grid back into a feature vector.

    Joint 0's channels 0:4 become the root features and 4:8 the foot contacts; ric and rotations
    come from joints 1..J-1, velocities from every joint (joint 0's channel 8 is unused).

    Args:
        grid: ``(..., J, 12)``.

    Returns:
        ``(..., 12J - 1)``, same dtype and device.
    """
    root = grid[..., 0, :ROOT_DIMS]  # (..., 4)
    feet = grid[..., 0, ROOT_DIMS : ROOT_DIMS + FOOT_DIMS]  # (..., 4)
    ric = grid[..., 1:, 0:3].flatten(-2)  # (..., J-1, 3) -> (..., 3(J-1))
    rot = grid[..., 1:, 3:9].flatten(-2)  # (..., J-1, 6) -> (..., 6(J-1))
    vel = grid[..., :, 9:12].flatten(-2)  # (..., J, 3) -> (..., 3J)
    return torch.cat([root, ric, rot, vel, feet], -1)


# ----------------------------------------------------------------------------- conv blocks


def _conv(dims: int) -> type[nn.Conv1d] | type[nn.Conv2d]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _activation(name: str, inplace: bool = False) -> nn.Module:
    try:
        cls = _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"vq_act {name!r} is not one of {sorted(_ACTIVATIONS)}") from None
    return cls() if cls is nn.GELU else cls(inplace=inplace)


class ResBlock(nn.Module):
    """Pre-activation residual block: ``x + conv2(act(conv1(act(x))))`` (dropout in training).

    Args:
        dims: 1 (over time) or 2 (over time and joint slots).
        channels: input = output channels.
        dilation: dilation (and padding) of the 3-tap ``conv1``; ``conv2`` is 1x1.
        activation: ``"relu"``, ``"silu"`` or ``"gelu"``.
        dropout: dropout on the residual branch (training only).
    """

    def __init__(
        self, dims: int, channels: int, dilation: int, activation: str, dropout: float = 0.2
    ) -> None:
        super().__init__()
        conv = _conv(dims)
        self.activation1 = _activation(activation)  # not in place: x is kept for the skip
        self.conv1 = conv(channels, channels, 3, 1, dilation, dilation)
        self.activation2 = _activation(activation, inplace=True)
        self.conv2 = conv(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, L)`` or ``(B, C, H, W)`` -> same shape."""
        h = self.conv2(self.activation2(self.conv1(self.activation1(x))))
        return x + self.dropout(h)


class ResStack(nn.Module):
    """``depth`` residual blocks with dilations ``growth**k``, in decreasing order (the official
    reversed order: block 0 has the largest dilation).

    Args:
        dims: 1 or 2.
        channels: channels.
        depth: number of blocks.
        dilation_growth_rate: dilation base.
        activation: activation name.
    """

    def __init__(
        self, dims: int, channels: int, depth: int, dilation_growth_rate: int, activation: str
    ) -> None:
        super().__init__()
        dilations = [dilation_growth_rate**k for k in reversed(range(depth))]
        self.model = nn.Sequential(*(ResBlock(dims, channels, d, activation) for d in dilations))

    def forward(self, x: Tensor) -> Tensor:
        """Same shape in and out."""
        return self.model(x)


class ConvEncoder(nn.Module):
    """Input conv, ``down_t`` stages of (strided conv, residual stack), output conv.

    ``model`` indices: 0 conv, 1 activation, 2..down_t+1 stages (``.0`` strided conv, ``.1``
    residual stack), last the output conv (the official ``Encoder`` / ``Encoder2d`` keys).

    Args:
        dims: 1 (``(B, C, T0)`` -> ``(B, D, T0 / 4)``) or 2 (``(B, C, T0, P)`` ->
            ``(B, D, T0 / 4, P / 4)``) for ``down_t = stride_t = 2``.
        in_channels, out_channels: ``C`` and ``D``.
        down_t, stride_t, width, depth, dilation_growth_rate, activation: as in :class:`VQConfig`.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        *,
        down_t: int,
        stride_t: int,
        width: int,
        depth: int,
        dilation_growth_rate: int,
        activation: str,
    ) -> None:
        super().__init__()
        conv = _conv(dims)
        stages = [
            nn.Sequential(
                conv(width, width, 2 * stride_t, stride_t, stride_t // 2),
                ResStack(dims, width, depth, dilation_growth_rate, activation),
            )
            for _ in range(down_t)
        ]
        self.model = nn.Sequential(
            conv(in_channels, width, 3, 1, 1),
            _activation(activation, inplace=True),
            *stages,
            conv(width, out_channels, 3, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Channels-first in, channels-first out (see the class docstring for shapes)."""
        return self.model(x)


class ConvDecoder(nn.Module):
    """Input conv, ``down_t`` stages of (residual stack, nearest x2 upsampling, conv), conv,
    activation, output conv (the official ``Decoder`` / ``Decoder2d`` keys).

    Args:
        dims: 1 (``(B, D, T)`` -> ``(B, C, 4T)``) or 2 (``(B, D, T, G)`` -> ``(B, C, 4T, 4G)``)
            for ``down_t = 2``; channels-first out (the official modules permute; callers here do).
        out_channels, code_dim: ``C`` and ``D``.
        down_t, width, depth, dilation_growth_rate, activation: as in :class:`VQConfig`.
    """

    def __init__(
        self,
        dims: int,
        out_channels: int,
        code_dim: int,
        *,
        down_t: int,
        width: int,
        depth: int,
        dilation_growth_rate: int,
        activation: str,
    ) -> None:
        super().__init__()
        conv = _conv(dims)
        stages = [
            nn.Sequential(
                ResStack(dims, width, depth, dilation_growth_rate, activation),
                nn.Upsample(scale_factor=2, mode="nearest"),
                conv(width, width, 3, 1, 1),
            )
            for _ in range(down_t)  # always x2, whatever the encoder's stride (as upstream)
        ]
        self.model = nn.Sequential(
            conv(code_dim, width, 3, 1, 1),
            _activation(activation, inplace=True),
            *stages,
            conv(width, width, 3, 1, 1),
            _activation(activation, inplace=True),
            conv(width, out_channels, 3, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Channels-first in, channels-first out (see the class docstring for shapes)."""
        return self.model(x)


# ----------------------------------------------------------------------------- the VQ-VAE


class RVQVAE(nn.Module):
    """Dual-stream residual VQ-VAE; parameter names and shapes are those of the official
    checkpoint's ``vq_model`` state dict.

    Args:
        config: sizes; the dataset (``config.dataset_name``) fixes the feature width, the joint
            count and the joint-slot padding.
    """

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        self.config = config
        if config.vq_norm not in _NO_NORM:
            raise ValueError(
                f"vq_norm {config.vq_norm!r} is not supported: the released MoGenTS models use no "
                "normalisation in the VQ-VAE (vq_norm None)"
            )
        before, after = config.joint_pad
        slots = config.joints_num + before + after
        kernel, stride, pad = 2 * config.stride_t, config.stride_t, config.stride_t // 2
        for _ in range(config.down_t):  # the strided convs' output length
            slots = (slots + 2 * pad - kernel) // stride + 1
        if slots != N_JOINT_GROUPS:
            raise ValueError(
                f"down_t={config.down_t}, stride_t={config.stride_t} reduce the "
                f"{config.joints_num}+{before}+{after} joint slots to {slots} groups; the 2D "
                f"stream needs {N_JOINT_GROUPS}"
            )
        blocks = {
            "down_t": config.down_t,
            "width": config.width,
            "depth": config.depth,
            "dilation_growth_rate": config.dilation_growth_rate,
            "activation": config.vq_act,
        }
        width, groups = config.input_width, N_JOINT_GROUPS
        # Registration order = the official state-dict order.
        self.encoder1d = ConvEncoder(1, width, config.code_dim1d, stride_t=stride, **blocks)
        self.decoder1d = ConvDecoder(1, width, config.code_dim1d, **blocks)
        self.quantizer1d = ResidualQuantizer(
            config.nb_code1d, config.code_dim1d, config.num_quantizers, config.shared_codebook
        )
        self.encoder2d = ConvEncoder(
            2, JOINT_CHANNELS, config.code_dim2d, stride_t=stride, **blocks
        )
        self.linear_merge = nn.Linear(groups * config.code_dim2d, groups * config.code_dim2d)
        self.decoder2d = ConvDecoder(2, JOINT_CHANNELS, config.code_dim2d, **blocks)
        self.linear_out = nn.Linear(2 * width, width)
        self.quantizer2d = ResidualQuantizer(
            config.nb_code2d, config.code_dim2d, config.num_quantizers, config.shared_codebook
        )

    def forward_decoder(self, ids_aux: Tensor, ids_ts: Tensor) -> tuple[Tensor, Tensor]:
        """Decode both token streams.

        Args:
            ids_aux: ``(B, T, q)`` aux codes, -1 = no code (trailing layers beyond ``q`` count as
                -1).
            ids_ts: ``(B, T, G, q')`` ts codes, -1 = no code.

        Returns:
            ``(y_aux, y)``, both ``(B, 4T, W)`` normalised features: the decoded aux stream alone,
            and the fused output (what generation uses).
        """
        if ids_ts.dim() != 4 or ids_ts.shape[:2] != ids_aux.shape[:2]:
            raise InvalidInputError(
                f"ids_ts {tuple(ids_ts.shape)} must be (B, T, {N_JOINT_GROUPS}, q) with the (B, T) "
                f"of ids_aux {tuple(ids_aux.shape)}"
            )
        # 1. aux stream
        z_aux = self.quantizer1d.dequantize(ids_aux)  # (B, T, D1)
        y_aux = self.decoder1d(z_aux.transpose(1, 2)).transpose(1, 2)  # (B, W, 4T) -> (B, 4T, W)
        # 2. ts stream: the G codes of a step are mixed as one (G * D2) vector, feature g * D2 + d
        z_ts = self.quantizer2d.dequantize(ids_ts)  # (B, T, G, D2)
        z_ts = self.linear_merge(z_ts.flatten(2))  # (B, T, G * D2)
        z_ts = z_ts.unflatten(2, (N_JOINT_GROUPS, -1)).permute(0, 3, 1, 2)  # (B, D2, T, G)
        grid = self.decoder2d(z_ts).permute(0, 2, 3, 1)  # (B, C, 4T, P) -> (B, 4T, P, C)
        first = self.config.joint_pad[0]
        grid = grid[:, :, first : first + self.config.joints_num]  # (B, 4T, J, C)
        # 3. fuse
        y = self.linear_out(torch.cat([y_aux, joint_grid_to_motion(grid)], -1))  # (B, 4T, W)
        return y_aux, y

    def encode(self, motion: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
        """Tokenize a motion (eval-mode nearest-code quantisation).

        Args:
            motion: ``(B, T0, W)`` normalised features, ``T0`` a multiple of 4.
            grid: ``(B, T0, J, 12)`` joint grid of the same motion (:func:`motion_to_joint_grid`).

        Returns:
            ``(ids_aux, ids_ts)``: ``(B, T0 / 4, Q)`` and ``(B, T0 / 4, G, Q)`` int64.
        """
        z_aux = self.encoder1d(motion.transpose(1, 2))  # (B, W, T0) -> (B, D1, T)
        ids_aux = self.quantizer1d.quantize(z_aux.transpose(1, 2))  # (B, T, Q)
        before, after = self.config.joint_pad
        slots = F.pad(grid, (0, 0, before, after))  # (B, T0, P, C)
        z_ts = self.encoder2d(slots.permute(0, 3, 1, 2))  # (B, C, T0, P) -> (B, D2, T, G)
        ids_ts = self.quantizer2d.quantize(z_ts.permute(0, 2, 3, 1))  # (B, T, G, Q)
        return ids_aux, ids_ts
