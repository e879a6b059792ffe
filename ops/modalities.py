"""PAN's input modalities and how many consecutive frames each reads per segment.

    RGB   one frame per segment.
    PA    ``data_length`` consecutive frames per segment (PA maps between neighbours).
    Lite  ``data_length`` frames: the first one's RGB stacked with the PA maps.

The model, the dataset and the tools all take these facts from here.
"""
from __future__ import annotations

MODALITIES = ('RGB', 'PA', 'Lite')
DEFAULT_DATA_LENGTH = 4  # frames per segment of the released PA and Lite models


def check_modality(modality: str) -> None:
    """Reject modalities PAN does not have, pointing Flow/RGBDiff users at PA."""
    if modality not in MODALITIES:
        raise ValueError(f"Unknown modality '{modality}'; PAN supports {', '.join(MODALITIES)}. "
                         'PA replaces optical flow (Flow) and RGB differences (RGBDiff), which are not read: use PA '
                         '(the PA modality replaces optical flow at almost no cost), or Lite for RGB+PA.')


def frames_per_segment(modality: str, data_length: int = DEFAULT_DATA_LENGTH) -> int:
    """RGB reads one frame per segment; PA and Lite read ``data_length`` consecutive frames."""
    check_modality(modality)
    return 1 if modality == 'RGB' else data_length
