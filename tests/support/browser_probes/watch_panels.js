// Records, from inside the page, the distinct previews each compare panel paints, its views
// and its final images; window.__panels_reset() starts a new record.
() => {
  const roots = () =>
    Array.from(document.querySelectorAll('.diffusion-compare [data-testid="diffusion-preview"]'));
  const fresh = () => roots().map(() => ({ previews: [], views: [], finals: 0 }));
  window.__panels = fresh();
  window.__panels_reset = () => { window.__panels = fresh(); };
  const check = () => {
    roots().forEach((root, index) => {
      const seen = window.__panels[index];
      if (!seen) return;
      const img = root.querySelector('[data-testid="preview-image"]');
      const src = img && img.getAttribute("src");
      if (src && !seen.previews.includes(src)) seen.previews.push(src);
      const view = root.getAttribute("data-view");
      if (seen.views[seen.views.length - 1] !== view) seen.views.push(view);
      seen.finals = root.querySelectorAll('[data-testid="final-image"]').length;
    });
  };
  new MutationObserver(check).observe(document.querySelector(".diffusion-compare"), {
    subtree: true, childList: true, attributes: true, attributeFilter: ["src", "data-view"],
  });
}
