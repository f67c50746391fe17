"""12. ``texture``: textures synthesized from noise by matching Gram matrices of VGG
layers (Gatys et al. 2015), for growing sets of layers: one shallow layer keeps only
colour and fine grain, deeper sets add ever larger structures. Reuses
``synthesize_texture``. Beside them, the classical non-neural Efros and Leung (1999)
nearest-neighbour synthesis on a small crop, as the "old" baseline."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

from styletrans.assets import resolve_image
from styletrans.diagnostics.base import Context, Method, Result, Tile, center_square, fit_longest, option
from styletrans.diagnostics.efros_leung import efros_leung
from styletrans.diagnostics.plot import rgb
from styletrans.images import load_image
from styletrans.optimize.gatys import GatysSettings, synthesize_texture

LAYER_SETS = ("relu1_1", "relu1_1,relu2_1", "relu1_1,relu2_1,relu3_1", "relu1_1,relu2_1,relu3_1,relu4_1")


@dataclass
class Texture(Method):
    """Gram-matrix texture synthesis across layer sets, and Efros-Leung."""

    name: ClassVar[str] = "texture"
    summary: ClassVar[str] = "Gram-matrix textures from growing VGG layer sets, and Efros-Leung synthesis"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    sample: str | None = option(None, "texture sample: a path or a bundled style name (default: the photo)")
    layer_sets: tuple[str, ...] = option(LAYER_SETS, "comma-separated VGG layer sets, one texture each")
    size: int = option(128, "side of the sample (central square) and of the neural textures")
    iterations: int = option(100, "L-BFGS iterations per texture")
    el_sample: int = option(64, "side of the Efros-Leung sample (downscaled central square)")
    el_size: int = option(48, "side of the Efros-Leung output")
    el_window: int = option(11, "Efros-Leung window side (odd)")

    def run(self, context: Context) -> Result:
        net = context.vgg_features(self.name)
        if self.sample is not None:
            source, label = load_image(resolve_image(self.sample, "styles")).to(context.device), self.sample
        else:
            source, label = context.image, context.image_name
        sample = center_square(fit_longest(source, 2 * self.size), self.size)[None]
        tiles = [Tile(rgb(sample), f"sample: {label}")]
        found = []
        for layer_set in self.layer_sets:
            layers = [name.strip() for name in layer_set.split(",") if name.strip()]
            # Relative Gram errors (one order-1 term per layer whatever its scale), weighted so
            # that L-BFGS takes well-sized steps: at 10 it diverged on some layer sets, at 100 none.
            settings = GatysSettings(loss_network=net.vgg_source, style_layers=dict.fromkeys(layers, 1.0),
                                     relative_style=True, style_weight=100.0, tv_weight=0.0,
                                     iterations=self.iterations, pixel_scale=1.0, clip_every_step=True,
                                     max_step=math.inf)
            start = time.perf_counter()
            result = synthesize_texture(sample, (self.size, self.size), settings, seed=context.seed,
                                        device=context.device, progress=context.progress)
            tiles.append(Tile(rgb(result.image), "Gram " + (layers[0] if len(layers) == 1 else
                                                             f"{layers[0]} .. {layers[-1]} ({len(layers)})")))
            found.append({"layers": layers,  # relative Gram errors, summed over the layers
                          "initial_gram_error": result.history[0]["style"] / settings.style_weight,
                          "final_gram_error": result.history[-1]["style"] / settings.style_weight,
                          "seconds": round(time.perf_counter() - start, 2)})
        small = fit_longest(sample[0], self.el_sample).cpu()
        start = time.perf_counter()
        classic = efros_leung(small, (self.el_size, self.el_size), self.el_window, seed=context.seed)
        el_seconds = time.perf_counter() - start
        tiles += [Tile(rgb(small), f"{self.el_sample}px sample"),
                  Tile(rgb(classic), f"Efros-Leung {self.el_size}px ({el_seconds:.1f}s)")]
        summary = {"network": net.source, "sample": label, "gram": found,
                   "efros_leung": {"sample": list(small.shape[-2:]), "size": self.el_size,
                                   "window": self.el_window, "seconds": round(el_seconds, 2)}}
        return self.result(summary, [tiles], f"texture synthesis: {net.source} Gram matrices vs Efros-Leung",
                           tile_inches=2.2)
