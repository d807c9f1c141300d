"""Audio input shared by every backend: probing, decoding to mono at a backend's rate, windowing."""

from .decode import AUDIO_EXTENSIONS, AudioError, ProbeResult, decode, probe  # noqa: F401
from .windows import Window, plan_windows  # noqa: F401
