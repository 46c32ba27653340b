"""Charts as text: the metric history of the registry's versions, for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

BLOCKS = " ▏▎▍▌▋▊▉█"
WIDTH = 40


def text_chart(
    points: Sequence[tuple[str, float | None]], metric: str, *, width: int = WIDTH
) -> str:
    """One bar per version, scaled between the lowest and highest value (named on top)."""
    values = [value for _, value in points if value is not None]
    if not values:
        return f"no version has {metric} to chart"
    low, high = min(values), max(values)
    span = high - low
    label_width = max(len(label) for label, _ in points)
    lines = [f"{metric}, bars from {low:.4f} (shortest) to {high:.4f} (longest)"]
    for label, value in points:
        if value is None:
            lines.append(f"{label.ljust(label_width)}  (no {metric})")
            continue
        # The lowest value still gets a sliver, so every version with a value shows a bar.
        share = 1.0 if span == 0 else 0.05 + 0.95 * (value - low) / span
        eighths = round(share * width * 8)
        bar = BLOCKS[-1] * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")
        lines.append(f"{label.ljust(label_width)}  {bar.ljust(width)}  {value:.4f}")
    return "\n".join(lines)
