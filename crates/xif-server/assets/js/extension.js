// extension: an extension's overview. A confirmed publication (or a broken lock) is sent once:
// its button is disabled while the server publishes, which can take a while, and says so.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.matches("form.confirm")) return;
  const button = form.querySelector("button[type=submit]");
  if (!button) return;
  // After the browser took the form's fields: a disabled button is not sent, and this one has no value.
  window.setTimeout(() => {
    button.disabled = true;
    button.textContent = "Publishing…";
  }, 0);
});
