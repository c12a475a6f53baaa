// Upload & Publish: the same form, sent with XMLHttpRequest to show its progress. Without
// scripts, the form posts as any form does.
"use strict";
(() => {
  const bytes = (count) => {
    if (count < 1024) return `${count} bytes`;
    if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
    return `${(count / (1024 * 1024)).toFixed(1)} MiB`;
  };
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "upload-form" || event.defaultPrevented) return;
    event.preventDefault();
    const box = form.querySelector("#upload-progress");
    const bar = form.querySelector("#upload-bar");
    const figures = form.querySelector("#upload-figures");
    const button = form.querySelector("button[type=submit]");
    const show = (loaded, total) => {
      const percent = total > 0 ? Math.floor((loaded * 100) / total) : 0;
      bar.setAttribute("value", String(percent));
      bar.textContent = `${percent}%`;
      figures.textContent = `${percent}% · ${bytes(loaded)} of ${bytes(total)}`;
    };
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) show(progress.loaded, progress.total);
    });
    request.upload.addEventListener("load", (progress) => {
      show(progress.total || progress.loaded, progress.total || progress.loaded);
      figures.textContent += " · sent; checking the archive…";
    });
    request.addEventListener("load", () => {
      const landed = new URL(request.responseURL || form.action, window.location.href);
      if (landed.pathname !== new URL(form.action, window.location.href).pathname) {
        window.location.assign(landed.href);
        return;
      }
      // A refusal: the page the server answered, in place of this one's form.
      const answer = new DOMParser().parseFromString(request.responseText, "text/html");
      const fresh = answer.getElementById("upload-form");
      const main = answer.getElementById("main");
      if (fresh) {
        form.replaceWith(fresh);
        const error = fresh.querySelector("#file-error");
        const input = fresh.querySelector("#file");
        if (input) input.focus();
        if (error) error.scrollIntoView({ block: "nearest" });
      } else if (main) {
        document.title = answer.title;
        document.getElementById("main").replaceWith(main);
      }
    });
    request.addEventListener("error", () => {
      button.disabled = false;
      figures.textContent = "The upload failed: the connection to the server broke. Send it again.";
    });
    box.hidden = false;
    button.disabled = true;
    const input = form.querySelector("#file");
    show(0, input && input.files.length ? input.files[0].size : 0);
    request.send(new FormData(form));
  });
})();
