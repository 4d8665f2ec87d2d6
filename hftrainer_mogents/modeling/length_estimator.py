"""The MoMask length estimator used by MoGenTS: a CLIP text feature -> logits over token lengths.

Class ``k`` of the output means ``k`` tokens, i.e. ``4k`` frames. The module only computes logits;
turning them into lengths (the official code samples one class per text) is the caller's business.
"""

from __future__ import annotations

from torch import Tensor, nn

from hftrainer_mogents.config import LengthEstimatorConfig

__all__ = ["LengthEstimator"]


class LengthEstimator(nn.Module):
    """MLP ``Linear -> LayerNorm -> LeakyReLU(0.2)`` x3 (dropout 0.2 between them) then ``Linear``.

    ``output`` indices 0, 4, 8, 11 are the Linear layers and 1, 5, 9 the LayerNorms (the official
    ``output.{i}`` keys); 2, 6, 10 are activations and 3, 7 dropouts.

    Args:
        config: input width (the CLIP feature, 512) and number of length classes (50).
    """

    HIDDEN_SIZES = (512, 256, 128)  # fixed upstream, not in any options file
    NEGATIVE_SLOPE = 0.2
    DROPOUT = 0.2

    def __init__(self, config: LengthEstimatorConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.input_size
        for i, hidden in enumerate(self.HIDDEN_SIZES):
            if i:
                layers.append(nn.Dropout(self.DROPOUT))
            layers += [
                nn.Linear(width, hidden),
                nn.LayerNorm(hidden),
                nn.LeakyReLU(self.NEGATIVE_SLOPE, inplace=True),
            ]
            width = hidden
        layers.append(nn.Linear(width, config.output_size))
        self.output = nn.Sequential(*layers)

    def forward(self, text_features: Tensor) -> Tensor:
        """Logits over token lengths.

        Args:
            text_features: ``(B, input_size)`` CLIP text features.

        Returns:
            ``(B, output_size)`` logits; class ``k`` = ``k`` tokens (``4k`` frames).
        """
        return self.output(text_features)
