// The colour at the centre of the first preview image on the stage, read through a canvas.
() => {
  const img = document.querySelector('[data-testid="stage"] img');
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
  return [d[0], d[1], d[2]];
}
