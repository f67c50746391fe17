"""Image similarity between the fast output and Gatys' output: SSIM, PSNR and LPIPS.

SSIM and PSNR come from torchmetrics (no weights). LPIPS (Zhang et al. 2018) needs
a pretrained backbone: torchmetrics ships LPIPS' linear heads, and the VGG-16 under
them is torchvision's ``IMAGENET1K_V1``, the styletrans weight source
``vgg16-torchvision``. It is used only when that file is already in torch.hub's
cache (``styletrans weights fetch vgg16-torchvision`` puts it there); evaluation
never downloads. LPIPS' heads were fitted to torchvision's VGG, so the Caffe VGG
(``vgg16-caffe``) is no substitute.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

LPIPS_SOURCE = "vgg16-torchvision"


def lpips_weights_file() -> Path:
    """Where torchvision keeps the VGG-16 weights LPIPS is built on."""
    from torchvision.models import VGG16_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_Weights.IMAGENET1K_V1.url).name


def load_lpips(device: torch.device | str = "cpu") -> tuple[nn.Module | None, str | None]:
    """``(LPIPS-VGG module, None)``, or ``(None, why it is skipped)`` without the weights."""
    weights = lpips_weights_file()
    if not weights.is_file():
        return None, (f"LPIPS skipped: it needs the {LPIPS_SOURCE} weights ({weights.name}), not in the torch.hub "
                      f"cache; run `styletrans weights fetch {LPIPS_SOURCE}` once (downloads 528 MB) to include it")
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type="vgg", normalize=True).to(device).eval(), None


@torch.no_grad()
def similarity(image: Tensor, reference: Tensor, lpips: nn.Module | None = None) -> dict[str, float | None]:
    """SSIM (1 = identical), PSNR in dB and LPIPS (0 = identical; None without weights) of
    two (1, 3, H, W) images in [0, 1]."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    image, reference = image.float().clamp(0, 1), reference.float().clamp(0, 1).to(image.device)
    scores: dict[str, float | None] = {
        "ssim": float(structural_similarity_index_measure(image, reference, data_range=1.0)),
        "psnr": float(peak_signal_noise_ratio(image, reference, data_range=1.0)),
        "lpips": None,
    }
    if lpips is not None:
        scores["lpips"] = float(lpips(image, reference))  # the module is on the images' device
        lpips.reset()
    return scores
