// Records every text an element with the given data-testid shows, in order, in
// window.__texts[testid]: read as the page changes it (a MutationObserver), so a test reads what
// the page showed first however late the test itself looks (a countdown's starting value).
(testid) => {
  const seen = [];
  const read = () => {
    const element = document.querySelector(`[data-testid="${testid}"]`);
    const text = element ? element.textContent.trim() : null;
    if (text !== null && seen[seen.length - 1] !== text) seen.push(text);
  };
  new MutationObserver(read).observe(document.body, {
    subtree: true,
    childList: true,
    characterData: true,
  });
  read();
  window.__texts = { ...(window.__texts || {}), [testid]: seen };
}
