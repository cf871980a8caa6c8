// Samples the stage every animation frame: a frame is blank when the stage shows no image,
// or an image that is not decoded yet. window.__stage.stop() ends the sampling.
() => {
  const root = document.querySelector('[data-testid="diffusion-preview"]');
  const log = { frames: 0, blank: 0, views: [], running: true };
  const tick = () => {
    if (!log.running) return;
    const imgs = [...root.querySelectorAll('[data-testid="stage"] img')];
    const shown =
      imgs.length > 0 &&
      imgs.every((img) => img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0);
    log.frames += 1;
    if (!shown) {
      log.blank += 1;
      if (log.views.length < 20) log.views.push(root.dataset.view);
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  log.stop = () => {
    log.running = false;
    return { frames: log.frames, blank: log.blank, views: log.views };
  };
  window.__stage = log;
}
