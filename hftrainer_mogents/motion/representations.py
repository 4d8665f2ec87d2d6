"""The motion representations the zoo names: width, frame rate, joints, 6D convention, fields.

A registry in the zoo's shape (``FieldSpec``, ``MotionRepr``, ``get_spec``, ``list_specs``,
``infer_spec_from_dim``: the host's ``hftrainer.motion.representation.specs``), so code written
against the zoo's registry reads ours the same way. Plain frozen dataclasses, no numpy or torch:
importing it costs nothing.

Where the specs come from:

- ``hml263``, ``ms272``, ``motion_135``: the zoo's names, aliases, conventions and field
  boundaries; the boundaries are the slices our code reads (``motion.hml263``, ``motion.ms272``,
  ``motion.smpl135.motion135``; ``tests/test_representations.py`` checks them against those
  functions).
- ``joints22``: ours (the zoo's registry has no spec for joint positions; its converters call
  them "joints"). The node our converter graph uses between 263 and SMPL.
- ``motion_138``, ``motion_198``, ``motion_147``, ``motion_151``, ``motion_201``,
  ``interhuman_262``: listed as the zoo's registry states them (``specs.py`` at HFTrainer
  ``1667d2a``) so a width or an alias is recognised; this package has no code that reads them.

The zoo's ``rot6d_convention`` says "row" for two different 6D layouts (``motion_135`` stores
``R[:, :2]`` row-major, MotionStreamer-272 stores ``R[:2, :]``), so every spec here also names the
exact layout in :attr:`MotionRepr.rot6d_layout`, after the ``motion.rotations`` functions
(``rot6d_rows``, ``rot6d_cols``, ``rot6d_cols_interleaved``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hftrainer_mogents.errors import InvalidInputError, UnknownRepresentationError

__all__ = [
    "ROT6D_ROW",
    "ROT6D_COLUMN",
    "FieldSpec",
    "MotionRepr",
    "REGISTRY",
    "HML263",
    "MS272",
    "MOTION_135",
    "JOINTS22",
    "get_spec",
    "list_specs",
    "infer_spec_from_dim",
]

# the zoo's two rot6d convention names
ROT6D_ROW = "row"
ROT6D_COLUMN = "column"


@dataclass(frozen=True)
class FieldSpec:
    """A block of channels ``[start:end)`` of a motion vector.

    Attributes:
        name: the block's name (the zoo's, e.g. ``"ric_data"``).
        start: first channel.
        end: one past the last channel.
        desc: one line of what the channels hold.
    """

    name: str
    start: int
    end: int
    desc: str = ""

    @property
    def size(self) -> int:
        """Number of channels."""
        return self.end - self.start

    def as_slice(self) -> slice:
        """``slice(start, end)``, to index the last axis of a motion array."""
        return slice(self.start, self.end)


@dataclass(frozen=True)
class MotionRepr:
    """One motion representation.

    The first twelve attributes are the zoo's ``MotionRepr``, in its order; ``rot6d_layout`` is
    ours.

    Attributes:
        name: canonical name (lower case).
        dim: channels per frame (``joints22``: 66, the (22, 3) positions flattened).
        fps: native frame rate; None where the representation keeps the rate of what it was
            made from (``joints22``).
        body_model: the skeleton the vector describes (the zoo's labels, e.g. ``"smpl_22"``).
        num_joints: joints of that skeleton.
        rot6d_convention: the zoo's name of the 6D layout (``"row"``, ``"column"``) or None.
        transl_type: ``"abs"``, ``"rel"``, ``"abs_rel"`` or None (no translation block).
        fields: the channel blocks in order; they tile ``[0, dim)``.
        norm_stats: where the normalisation statistics live, or None.
        decode_via: how to get joints (or SMPL parameters) out of it.
        notes: caveats.
        aliases: other names :func:`get_spec` accepts.
        rot6d_layout: the exact 6D layout, named after ``motion.rotations`` (``"rot6d_rows"``,
            ``"rot6d_cols"``, ``"rot6d_cols_interleaved"``), or None.
    """

    name: str
    dim: int
    fps: float | None
    body_model: str
    num_joints: int
    rot6d_convention: str | None
    transl_type: str | None
    fields: tuple[FieldSpec, ...]
    norm_stats: str | None = None
    decode_via: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    rot6d_layout: str | None = None

    def __post_init__(self) -> None:
        # the blocks must tile the vector: a gap or an overlap is a wrong layout, not a style
        pos = 0
        for f in self.fields:
            if f.start != pos or f.end <= f.start:
                raise InvalidInputError(
                    f"{self.name}: field {f.name!r} is [{f.start}:{f.end}), expected it to start "
                    f"at {pos} and be non-empty (fields must tile [0, {self.dim}) in order)"
                )
            pos = f.end
        if pos != self.dim:
            raise InvalidInputError(f"{self.name}: field sizes sum to {pos} but dim={self.dim}")

    def field(self, name: str) -> FieldSpec:
        """The block called ``name``.

        Raises:
            UnknownRepresentationError: no such block (the message lists the blocks).
        """
        for f in self.fields:
            if f.name == name:
                return f
        raise UnknownRepresentationError(
            f"{self.name} has no field {name!r}; its fields: {[f.name for f in self.fields]}"
        )

    def slice(self, name: str) -> slice:
        """The ``slice`` of the block called ``name`` (``x[..., spec.slice("root_y")]``)."""
        return self.field(name).as_slice()

    def describe(self) -> str:
        """A few lines: the attributes, then one line per block."""
        fps = "source's" if self.fps is None else f"{self.fps:g}"
        lines = [
            f"{self.name}: dim={self.dim}, fps={fps}, body={self.body_model}, "
            f"joints={self.num_joints}, rot6d={self.rot6d_convention} ({self.rot6d_layout}), "
            f"transl={self.transl_type}"
        ]
        if self.aliases:
            lines.append(f"  aliases: {', '.join(self.aliases)}")
        if self.decode_via:
            lines.append(f"  decode_via: {self.decode_via}")
        if self.norm_stats:
            lines.append(f"  norm_stats: {self.norm_stats}")
        lines += [f"  [{f.start:>3}:{f.end:<3}] {f.name:<16} {f.desc}" for f in self.fields]
        if self.notes:
            lines.append(f"  notes: {self.notes}")
        return "\n".join(lines)


_SMPL22 = "smpl_22"
_ZOO_ONLY = "Listed as the zoo's registry states it; no code of this package reads it."

HML263 = MotionRepr(
    name="hml263",
    dim=263,
    fps=20,
    body_model="humanml3d_canonical_22",
    num_joints=22,
    rot6d_convention=ROT6D_COLUMN,
    transl_type=None,
    fields=(
        FieldSpec("root_rot_vel", 0, 1, "root yaw velocity (half-angle units, HumanML3D's)"),
        FieldSpec("root_lin_vel", 1, 3, "root x, z velocity in the root's heading frame"),
        FieldSpec("root_y", 3, 4, "root height"),
        FieldSpec("ric_data", 4, 67, "joints 1..21 relative to the root, heading removed (21x3)"),
        FieldSpec("rot_data", 67, 193, "joints 1..21 rotations, 6D first two columns (21x6)"),
        FieldSpec("local_velocity", 193, 259, "joint velocities in the heading frame (22x3)"),
        FieldSpec(
            "foot_contact", 259, 263, "contacts: left ankle, left foot, right ankle, right foot"
        ),
    ),
    norm_stats="the model artifact's mean/std (generation); the evaluator folder's (scoring)",
    decode_via="motion.hml263.recover_from_ric -> (T, 22, 3) joints",
    notes="MoGenTS' output space. A clip of T joint frames gives T - 1 rows. The rotations only "
    "fix bone directions (HumanML3D's IK); go through joints for SMPL.",
    aliases=("263", "humanml263", "humanml3d_263", "h3d263"),
    rot6d_layout="rot6d_cols",
)

MS272 = MotionRepr(
    name="ms272",
    dim=272,
    fps=30,
    body_model=_SMPL22,
    num_joints=22,
    rot6d_convention=ROT6D_ROW,
    transl_type=None,
    fields=(
        FieldSpec("root_lin_vel", 0, 2, "root x, z velocity in the previous frame's heading frame"),
        FieldSpec("heading_delta", 2, 8, "heading change since the previous frame, 6D rows"),
        FieldSpec("joint_pos", 8, 74, "22 joints, floor 0, root xz at 0, heading removed (22x3)"),
        FieldSpec("joint_vel", 74, 140, "differences of joint_pos between frames (22x3)"),
        FieldSpec("joint_rot6d", 140, 272, "22 SMPL local rotations, 6D first two rows (22x6)"),
    ),
    norm_stats="the MotionStreamer-272 evaluator folder's Mean/Std (grouped Std)",
    decode_via="motion.ms272.recover_joints_272 -> joints; recover_rotations_272 -> SMPL "
    "rotations and pelvis",
    notes="MotionStreamer's space, 30 fps. Stores no body shape: SMPL transl = pelvis - the "
    "body model's rest pelvis.",
    aliases=("272", "motionstreamer_272", "humanml3d_272", "h3d272", "gotozero_272"),
    rot6d_layout="rot6d_rows",
)

MOTION_135 = MotionRepr(
    name="motion_135",
    dim=135,
    fps=30,
    body_model=_SMPL22,
    num_joints=22,
    rot6d_convention=ROT6D_ROW,
    transl_type="abs",
    fields=(
        FieldSpec("transl", 0, 3, "SMPL transl parameter (pelvis = rest pelvis + transl)"),
        FieldSpec("rot6d", 3, 135, "22 SMPL local rotations, R[:, :2] row-major (22x6)"),
    ),
    decode_via="motion.smpl135.smpl135_joints (FK on the body model's rest joints)",
    notes="The zoo's 'row' here is R[:, :2] row-major [R00, R01, R10, R11, R20, R21], not the "
    "272 rows. 'smpl135' is this package's converter-graph name for it.",
    aliases=("135", "smpl22_135", "hymotion_m2m", "smpl135"),
    rot6d_layout="rot6d_cols_interleaved",
)

JOINTS22 = MotionRepr(
    name="joints22",
    dim=66,
    fps=None,
    body_model=_SMPL22,
    num_joints=22,
    rot6d_convention=None,
    transl_type=None,
    fields=(
        FieldSpec("positions", 0, 66, "22 joints (x, y, z), SMPL order; arrays are (T, 22, 3)"),
    ),
    decode_via="none: the joints themselves",
    notes="This package's spec (the zoo has none). World positions, y up, metres; the frame "
    "rate is the source's (20 fps from hml263, 30 fps from ms272).",
    aliases=("joints", "joints_22"),
)

_ZOO_LISTED = (
    MotionRepr(
        name="motion_138",
        dim=138,
        fps=30,
        body_model=_SMPL22,
        num_joints=22,
        rot6d_convention=ROT6D_COLUMN,
        transl_type="abs_rel",
        fields=(
            FieldSpec("transl", 0, 6, "absolute (3) then relative (3) translation"),
            FieldSpec("rot6d", 6, 138, "22 local rotations, 6D 'column' (22x6)"),
        ),
        notes=_ZOO_ONLY,
        aliases=("138", "prism", "vermo", "mcm"),
    ),
    MotionRepr(
        name="motion_198",
        dim=198,
        fps=30,
        body_model=_SMPL22,
        num_joints=22,
        rot6d_convention=ROT6D_ROW,
        transl_type="abs",
        fields=(
            FieldSpec("transl", 0, 3, "as motion_135"),
            FieldSpec("rot6d", 3, 135, "as motion_135"),
            FieldSpec("joint_pos", 135, 198, "joints 1..21 positions from FK (21x3)"),
        ),
        notes=_ZOO_ONLY + " The first 135 channels are motion_135.",
        aliases=("198",),
        rot6d_layout="rot6d_cols_interleaved",
    ),
    MotionRepr(
        name="motion_147",
        dim=147,
        fps=30,
        body_model=_SMPL22,
        num_joints=22,
        rot6d_convention=ROT6D_ROW,
        transl_type="abs",
        fields=(
            FieldSpec("transl", 0, 3, "as motion_135"),
            FieldSpec("rot6d", 3, 135, "as motion_135"),
            FieldSpec("end_effectors", 135, 147, "hands and feet positions (4x3)"),
        ),
        notes=_ZOO_ONLY + " The first 135 channels are motion_135.",
        aliases=("147",),
        rot6d_layout="rot6d_cols_interleaved",
    ),
    MotionRepr(
        name="motion_151",
        dim=151,
        fps=30,
        body_model=_SMPL22,
        num_joints=22,
        rot6d_convention=ROT6D_ROW,
        transl_type="abs",
        fields=(
            FieldSpec("transl", 0, 3, "as motion_135"),
            FieldSpec("rot6d", 3, 135, "as motion_135"),
            FieldSpec("end_effectors", 135, 147, "hands and feet positions (4x3)"),
            FieldSpec("foot_contact", 147, 151, "4 foot-contact flags"),
        ),
        notes=_ZOO_ONLY + " The first 135 channels are motion_135.",
        aliases=("151",),
        rot6d_layout="rot6d_cols_interleaved",
    ),
    MotionRepr(
        name="motion_201",
        dim=201,
        fps=30,
        body_model=_SMPL22,
        num_joints=22,
        rot6d_convention=ROT6D_ROW,
        transl_type="abs",
        fields=(
            FieldSpec("transl", 0, 3, "as motion_135"),
            FieldSpec("root_rot6d", 3, 9, "root rotation, as motion_135"),
            FieldSpec("body_rot6d", 9, 135, "joints 1..21 local rotations, as motion_135"),
            FieldSpec("ric_joint_pos", 135, 201, "22 root-relative joint positions (22x3)"),
        ),
        notes=_ZOO_ONLY + " The first 135 channels are motion_135.",
        aliases=("201", "hymotion_t2m"),
        rot6d_layout="rot6d_cols_interleaved",
    ),
    MotionRepr(
        name="interhuman_262",
        dim=262,
        fps=30,
        body_model=_SMPL22,
        num_joints=22,
        rot6d_convention=ROT6D_ROW,
        transl_type=None,
        fields=(
            FieldSpec("joint_pos", 0, 66, "22 joints, canonical frame (22x3)"),
            FieldSpec("joint_vel", 66, 132, "22 joint velocities (22x3)"),
            FieldSpec("body_rot6d", 132, 258, "joints 1..21 local rotations, 6D 'row' (21x6)"),
            FieldSpec("foot_contact", 258, 262, "4 foot-contact flags"),
        ),
        notes=_ZOO_ONLY + " One person of InterHuman / InterGen's two-person data.",
        aliases=("262", "interhuman262", "ih262", "intergen262", "interhuman_native_262"),
    ),
)

# the zoo's order, then ours
_ALL: tuple[MotionRepr, ...] = (
    MOTION_135,
    *_ZOO_LISTED[:5],
    HML263,
    MS272,
    _ZOO_LISTED[5],
    JOINTS22,
)


def _build_registry(specs: tuple[MotionRepr, ...]) -> dict[str, MotionRepr]:
    registry: dict[str, MotionRepr] = {}
    for spec in specs:
        for key in (spec.name, *spec.aliases):
            if key != key.lower() or key in registry:
                raise InvalidInputError(f"representation name {key!r} is not unique lower case")
            registry[key] = spec
    return registry


# every name and alias -> its spec
REGISTRY: dict[str, MotionRepr] = _build_registry(_ALL)


def _compact(name: str) -> str:
    """A name without case, spaces, ``-``, ``_`` or ``.`` (``"HumanML3D-263"`` ->
    ``"humanml3d263"``): how the spellings of one name are matched."""
    return re.sub(r"[\s_.\-]+", "", str(name).lower())


def _build_spellings(registry: dict[str, MotionRepr]) -> dict[str, MotionRepr | None]:
    """Compact spelling -> its spec; ``None`` where two specs share a spelling (ambiguous)."""
    spellings: dict[str, MotionRepr | None] = {}
    for key, spec in registry.items():
        compact = _compact(key)
        if compact in spellings and spellings[compact] is not spec:
            spellings[compact] = None
        else:
            spellings[compact] = spec
    return spellings


# the '-'/'_'/space/case variants of every name and alias (the zoo's successor writes
# "humanml3d-263"), where they name one spec
_SPELLINGS = _build_spellings(REGISTRY)


def list_specs() -> tuple[MotionRepr, ...]:
    """Every representation once (no alias duplicates), the zoo's first."""
    return _ALL


def get_spec(name: str) -> MotionRepr:
    """The representation called ``name`` (its name or an alias; case, spaces and ``-``/``_``/``.``
    separators ignored where that leaves one representation: ``"HumanML3D-263"`` is ``hml263``).

    Raises:
        UnknownRepresentationError: unknown name (a ``KeyError``, as the zoo's); the message
            lists the known names.

    Examples:
        >>> get_spec("272").name
        'ms272'
        >>> get_spec("HumanML263").fps
        20
        >>> get_spec("humanml3d-263").name
        'hml263'
    """
    key = str(name).strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    variant = _SPELLINGS.get(_compact(key))
    if variant is not None:
        return variant
    raise UnknownRepresentationError(
        f"unknown motion representation {name!r}; known: "
        f"{', '.join(s.name for s in _ALL)}; aliases: "
        f"{', '.join(sorted(k for k, s in REGISTRY.items() if k != s.name))}"
    )


def infer_spec_from_dim(dim: int) -> MotionRepr:
    """The one representation ``dim`` channels wide (a guess: prefer :func:`get_spec` with a name).

    Args:
        dim: channels per frame, e.g. ``x.shape[-1]`` (66 for (T, 22, 3) joints flattened).

    Raises:
        UnknownRepresentationError: no representation, or more than one, has that width.
    """
    matches = [s for s in _ALL if s.dim == dim]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        widths = ", ".join(f"{s.name}={s.dim}" for s in _ALL)
        raise UnknownRepresentationError(
            f"no motion representation is {dim} channels wide; known widths: {widths}"
        )
    raise UnknownRepresentationError(
        f"{dim} channels fit {[s.name for s in matches]}; name the representation (get_spec)"
    )
