// Every visible text element of the component (and of its full-size viewer, when open):
// its contrast ratio against what is behind it (backgrounds composited up the tree, with
// opacity), and the WCAG AA minimum for its size (4.5:1, or 3:1 for large text). Given a CSS
// selector, the texts of the elements it matches instead.
(selector) => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "rgba(0, 0, 0, 0)";
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3]));
  const lum = (c) => {
    const [r, g, b] = c.map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (l1 + 0.05) / (l2 + 0.05);
  };
  const roots = selector ? [...document.querySelectorAll(selector)] : [];
  const widget = selector ? null : document.querySelector('[data-testid="diffusion-preview"]');
  if (widget) roots.push(widget.closest(".block") || widget);
  const viewer = selector ? null : document.querySelector('[data-testid="viewer"]');
  if (viewer) roots.push(viewer);
  const results = [];
  for (const root of roots) {
    for (const el of root.querySelectorAll("*")) {
      const own = [...el.childNodes]
        .filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.textContent.trim())
        .join(" ")
        .trim();
      if (!own) continue;
      if (el.closest(".sr-only")) continue;
      const style = getComputedStyle(el);
      const rect = el.getBoundingClientRect();
      if (rect.width === 0 || rect.height === 0 || style.visibility === "hidden") continue;
      const chain = [];
      for (let n = el; n; n = n.parentElement) chain.unshift(n);
      let bg = [255, 255, 255];
      let under = null;
      let opacity = 1;
      for (const n of chain) {
        const s = getComputedStyle(n);
        const o = parseFloat(s.opacity);
        if (o < 1) {
          if (under === null) under = bg;
          opacity *= o;
        }
        bg = over(rgba(s.backgroundColor), bg);
      }
      // Fully transparent (Gradio's hidden status tracker, say): nobody sees it.
      if (opacity === 0) continue;
      let fg = over(rgba(style.color), bg);
      if (under !== null) {
        fg = over([...fg, opacity], under);
        bg = over([...bg, opacity], under);
      }
      const size = parseFloat(style.fontSize);
      const bold = parseInt(style.fontWeight, 10) >= 700;
      const large = size >= 24 || (size >= 18.66 && bold);
      results.push({
        text: own.slice(0, 40),
        ratio: Math.round(ratio(fg, bg) * 100) / 100,
        required: large ? 3 : 4.5,
        size,
        fg: fg.map(Math.round),
        bg: bg.map(Math.round),
        tag: el.tagName.toLowerCase() + "." + [...el.classList].join("."),
      });
    }
  }
  return results;
}
