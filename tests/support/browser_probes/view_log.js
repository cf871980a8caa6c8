// Records every change of the component's view and status message, sampled each animation
// frame, in window.__views.
() => {
  const root = document.querySelector('[data-testid="diffusion-preview"]');
  const seen = [];
  const tick = () => {
    const message = root.querySelector('[data-testid="status-message"]');
    const entry = root.dataset.view + "|" + (message ? message.textContent.trim() : "");
    if (seen[seen.length - 1] !== entry) seen.push(entry);
    requestAnimationFrame(tick);
  };
  tick();
  window.__views = seen;
}
