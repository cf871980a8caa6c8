"""What ``generate_tab`` and ``compare_tab`` add to Gradio's own page: readable text and
dropdowns that close.

Gradio's default theme draws help text, slider ranges and the selected tab's label at 1.9:1 to 2.8:1
contrast, its primary button at 2.8:1 (3.6:1 dark) and its stop button at 3.8:1; WCAG AA asks 4.5:1
for text this size. Its single-choice dropdown stays open after Tab moves the focus on (its key
handler reopens the list after the blur closed it), covering the next field. A library tab cannot
set the Blocks' theme or CSS (Gradio takes both at ``launch``), so each tab renders one ``gr.HTML``
holding a ``<style>`` (scoped to the tabs' own ``diffusion-ui`` class, and to the Tabs that hold
them) and a script that closes a dropdown the focus has left. Any app built on the tabs gets both;
the app's own theme and CSS still apply everywhere else.
"""

from __future__ import annotations

import gradio as gr

SCOPE = "diffusion-ui"
"""The class ``generate_tab`` and ``compare_tab`` put on their outermost container."""

CSS = f"""
.{SCOPE} {{
  --button-primary-background-fill: var(--primary-700);
  --button-primary-background-fill-hover: var(--primary-800);
  --button-primary-text-color: white;
  --button-primary-text-color-hover: white;
  --button-cancel-background-fill: var(--red-700, #b91c1c);
  --button-cancel-background-fill-hover: var(--red-800, #991b1b);
  --button-cancel-text-color: white;
  --button-cancel-text-color-hover: white;
}}
body:not(.dark) .{SCOPE} {{
  --body-text-color-subdued: var(--neutral-600);
  --block-info-text-color: var(--neutral-600);
}}
body:not(.dark) .tabs:has(.{SCOPE}) {{ --color-accent: var(--primary-700); }}
.{SCOPE} .diffusion-pair .head > label {{ flex-basis: 100%; }}
.diffusion-page-style {{ display: none !important; }}
"""
"""Darker subdued text and accent in light mode (4.5:1 or more on Gradio's white and grey
blocks), darker primary and stop buttons in both modes (white text at 5.2:1 and 6.5:1), and
the sliders of a pair each with its number box on the line under its label, so both halves
of a pair look alike at any width (Gradio wraps a slider's header only when it runs out of room)."""

CLOSE_DROPDOWNS = """
if (!window.__diffusionDropdownsClose) {
  window.__diffusionDropdownsClose = true;
  document.addEventListener("focusout", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.getAttribute("role") !== "combobox") return;
    // Gradio's key handler runs after its blur handler and reopens the list: close it after.
    setTimeout(() => {
      if (document.activeElement !== input && input.getAttribute("aria-expanded") === "true") {
        input.dispatchEvent(new FocusEvent("blur"));
      }
    }, 0);
  }, true);
}
"""
"""Once per page: a dropdown the focus has left and that still shows its list gets one more
``blur``, which runs Gradio's own closing handler."""


def page_style() -> gr.HTML:
    """Render the style and the dropdown fix in the current Blocks (a hidden block: it takes
    no room). Rendering it twice is harmless: the script guards itself, the rules repeat."""
    return gr.HTML(
        f"<style>{CSS}</style>",
        js_on_load=CLOSE_DROPDOWNS,
        elem_classes=["diffusion-page-style"],
        container=False,
        padding=False,
    )
