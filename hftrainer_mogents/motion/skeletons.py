"""Fixed skeletons the converters place joints on (data only, no model files).

``canon272`` is the rigid 22-joint skeleton of the zoo's ``motion135_to_272`` converter (the one
behind its published MotionStreamer-272 tables): parent-relative bone offsets in metres, SMPL
joint order, y up, the root offset 0. The zoo measured it on the HumanML3D-272 ground truth (mean
over all frames of ~400 clips of ``Rg[parent]^T (p[j] - p[parent])``), so left and right differ a
little. It is not the SMPL neutral rest skeleton: on a real clip the 272 position blocks of the two
differ by up to 83 mm. The values are the zoo's asset ``bone_offsets_canon272.npy`` (float64)
written out as numbers; ``research/bridge_272_skeleton.md`` lists them to 4 decimals.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MS272_SKELETONS", "CANON272_BONE_OFFSETS", "offsets_to_rest_joints"]

# the skeletons motion_135 -> 272 can use: the zoo's fixed one, or a body model's rest joints
MS272_SKELETONS = ("canon272", "smpl")

CANON272_BONE_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0603437094323378, -0.09463033323984515, -0.026169156401994572],
        [-0.06545515816247573, -0.10586700824198977, -0.021031798456017912],
        [-0.0030036871203730398, 0.11173355442702887, -0.028527729361567618],
        [0.055984760805095395, -0.37829612359516357, -0.009124910596128272],
        [-0.04534430345305129, -0.36189911633718574, -0.017014843552387325],
        [0.010199402539142791, 0.1337375618042498, -0.005811196347857919],
        [-0.044157285837749326, -0.4020413864379213, -0.033814516654288314],
        [0.015324596568299622, -0.4095589080617065, -0.021925149057462918],
        [-0.011682806265867037, 0.053384825002492864, 0.029953424644018376],
        [0.04803370757834999, -0.057317385334507906, 0.11864764551286618],
        [-0.039262768256978775, -0.05772992792810049, 0.11941186636063292],
        [-0.012790528933037466, 0.16772425020400566, -0.03233196768484846],
        [0.04733854943821492, 0.08639075856940755, -0.006783705790106665],
        [-0.04935112864175264, 0.08573805591561752, -0.012964841149929216],
        [0.025222567748567855, 0.16265942098451236, 0.020381256453701806],
        [0.12320449038062324, 0.05802379078600977, -0.015129798239154097],
        [-0.10594538813466478, 0.05386475443501541, -0.013081811242541782],
        [0.2543897945259842, -0.07248408659486336, -0.04435724510293817],
        [-0.27177335061495433, -0.03581085763971172, -0.02733292131301259],
        [0.2510424999922273, 0.023911982393114428, -0.0017735811466605628],
        [-0.24842402521602377, -0.004861045245578388, -0.014765846460154206],
    ],
    dtype=np.float64,
)
CANON272_BONE_OFFSETS.setflags(write=False)


def offsets_to_rest_joints(offsets: np.ndarray, parents: list[int] | tuple[int, ...]) -> np.ndarray:
    """Rest joint positions of a skeleton given by parent-relative offsets (root at the origin).

    Forward kinematics on these rest joints with SMPL ``transl`` puts the root at ``transl`` and
    each joint at its parent plus the parent's global rotation applied to its offset.

    Args:
        offsets: (J, 3) parent-relative offsets (row 0 is the root's own offset).
        parents: the J parents (root -1), parents before children.

    Returns:
        (J, 3) float64.
    """
    rest = np.zeros((len(parents), 3), dtype=np.float64)
    rest[0] = offsets[0]
    for j in range(1, len(parents)):
        rest[j] = rest[parents[j]] + offsets[j]
    return rest
