// Administration: the copy button of a new token (shown once).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const said = button.parentElement.querySelector(".copied");
  if (!field) return;
  const done = (text) => {
    if (said) said.textContent = text;
  };
  field.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(
      () => done("Copied."),
      () => done("Select the token and copy it (Ctrl+C)."),
    );
  } else {
    // Without the clipboard API (a page not served over TLS), the token is selected to copy.
    done(document.execCommand && document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
  }
});
