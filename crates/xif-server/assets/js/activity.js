// Service Center, an extension's log: following it live. The page shows the log as it was
// made, with a Refresh link; with scripts on, this asks the server every few seconds for what
// the log gained (`…/log/text?from=CURSOR`), appends it, and keeps the end in view, until the
// "Follow live" button (aria-pressed) pauses it.
(() => {
  const log = document.getElementById("log-text");
  const button = document.getElementById("log-follow");
  const status = document.getElementById("log-status");
  if (!log || !button || !status || !log.dataset.source) return;
  const every = Number(log.dataset.every) || 2000;
  let cursor = log.dataset.cursor || "";
  let following = true;
  let timer = null;
  let asking = false;

  const say = (text) => {
    if (status.textContent !== text) status.textContent = text;
  };
  const following_text = "Following live: new lines appear as the extension writes them.";
  const toEnd = () => {
    if (following) log.scrollTop = log.scrollHeight;
  };
  const schedule = () => {
    if (following && timer === null) timer = window.setTimeout(ask, every);
  };

  async function ask() {
    timer = null;
    if (!following || asking) return;
    asking = true;
    try {
      const response = await fetch(`${log.dataset.source}?from=${encodeURIComponent(cursor)}`, {
        headers: { accept: "text/plain" },
        credentials: "same-origin",
        cache: "no-store",
      });
      const type = response.headers.get("content-type") || "";
      if (!type.startsWith("text/plain")) {
        // Redirected to the sign-in page: the session ended.
        say("The session ended, so the log is no longer followed: reload the page to sign in again.");
        setFollowing(false);
        return;
      }
      const text = await response.text();
      if (response.ok) {
        if (response.headers.get("x-log-mode") === "replace") log.textContent = text;
        else if (text) log.append(text);
        cursor = response.headers.get("x-log-cursor") || "";
        if (following) say(following_text);
        toEnd();
      } else if (response.status === 403 || response.status === 401) {
        say(text);
        setFollowing(false);
        return;
      } else {
        // Not running (yet): said, and asked again.
        say(text);
      }
    } catch {
      say("The server did not answer; trying again.");
    } finally {
      asking = false;
    }
    schedule();
  }

  function setFollowing(on) {
    following = on;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      say(following_text);
      toEnd();
      ask();
    } else {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
      if (status.textContent === following_text) say("Paused: the log is not followed. Press Follow live to follow it again.");
    }
  }

  button.hidden = false;
  button.addEventListener("click", () => setFollowing(!following));
  say(following_text);
  toEnd();
  schedule();
})();
