// Log in with a user name and password (no user name = the built-in admin), or with single sign-on
// when the gateway has it configured (/auth/status says so). The token pair goes to sessionStorage (api.js).
import { SSO_LOGIN_URL, authStatus, login } from "../api.js";
import { field, h, showErrors } from "../dom.js";

export function loginView(ssoError = "") {
  const username = h("input", { type: "text", autocomplete: "username", spellcheck: "false", placeholder: "admin" });
  const password = h("input", { type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Log in");
  const sso = h("div", { class: "sso-box", hidden: true },
    h("p", { class: "or" }, "or"),
    h("a", { class: "button sso", href: SSO_LOGIN_URL, role: "button" }, "Sign in with SSO"));
  const error = h("p", { class: "form-error", role: "alert", hidden: !ssoError }, ssoError);
  const form = h(
    "form",
    { class: "card login", "aria-label": "Log in" },
    h("h1", {}, "Claw Pen"),
    field("User name", username, { name: "username", hint: "empty: the admin" }),
    field("Password", password, { name: "password" }),
    error,
    button,
    sso,
  );
  authStatus()
    .then((status) => { sso.hidden = !status.sso_enabled; form.dataset.sso = status.sso_enabled ? "on" : "off"; })
    .catch(() => {});
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await login(password.value, username.value.trim());
    } catch (err) {
      showErrors(form, { fields: [{ field: "password", message: err.message }] });
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => password.focus());
  return form;
}
