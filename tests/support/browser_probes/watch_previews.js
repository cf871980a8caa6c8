// Records, from inside the page, every distinct preview the component paints and the step
// counter, until the first final image appears.
() => {
  const root = document.querySelector('[data-testid="diffusion-preview"]');
  const seen = { previews: [], broken: 0, elements: 0, steps: [], final_after: null };
  let last_img = null;
  const check = () => {
    if (seen.final_after !== null) return;
    const img = root.querySelector('[data-testid="preview-image"]');
    if (img && img !== last_img) {
      last_img = img;
      seen.elements += 1;
    }
    if (img && img.getAttribute("src") && !seen.previews.includes(img.getAttribute("src"))) {
      seen.previews.push(img.getAttribute("src"));
      if (!(img.complete && img.naturalWidth > 0)) seen.broken += 1;
    }
    const text = root.querySelector('[data-testid="progress-text"]');
    if (text && seen.steps[seen.steps.length - 1] !== text.textContent) {
      seen.steps.push(text.textContent);
    }
    if (root.querySelector('[data-testid="final-image"]')) {
      seen.final_after = seen.previews.length;
    }
  };
  new MutationObserver(check).observe(root, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["src", "data-testid"],
  });
  window.__preview_watch = seen;
}
