// Each group of the full-size viewer's toolbar: its top, whether its controls wrapped onto a
// second row, and whether it is cut off (overflowing, or past the screen's edges).
el => [...el.children].map(group => {
  const boxes = [...group.querySelectorAll(".action, .counter, .zoom")]
    .map(c => c.getBoundingClientRect()).filter(r => r.width > 0);
  const first_bottom = Math.min(...boxes.map(r => r.bottom));
  const box = group.getBoundingClientRect();
  return {
    top: Math.round(box.top),
    rows: boxes.some(r => r.top >= first_bottom - 1) ? 2 : 1,
    cut: group.scrollWidth > group.clientWidth + 1 || box.left < 0 || box.right > innerWidth + 1,
  };
})
