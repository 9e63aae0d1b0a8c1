"""The colour scales live in explorer.display.colors (the HTML report uses them too, without
Textual); the app's modules import them from here."""

from explorer.display.colors import (  # noqa: F401
    ATTRIBUTION, ATTRIBUTION_SIGNED, ENTROPY, INFLUENCE, KL, LAYER, NEUTRAL, PROBABILITY, RGB,
    DivergingScale, Scale, text_on,
)
