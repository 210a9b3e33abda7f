// Log in with the admin password; the token pair goes to sessionStorage (api.js).
import { login } from "../api.js";
import { field, h, showErrors } from "../dom.js";

export function loginView() {
  const password = h("input", { type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "card login", "aria-label": "Log in" },
    h("h1", {}, "Claw Pen"),
    field("Password", password, { name: "password" }),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await login(password.value);
    } catch (err) {
      showErrors(form, { fields: [{ field: "password", message: err.message }] });
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => password.focus());
  return form;
}
