// Create an agent from a template (provider and model pickers from /api/providers), or edit one
// (resources, env, secret references). A 422's {field, message} list lands on the fields it names.
import { ApiError, get, post, put } from "../api.js";
import { banner, clearErrors, field, h, showErrors } from "../dom.js";

function parseEnv(text) {
  const env = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new ApiError(422, { error: "invalid", detail: [{ field: "config.env_vars", message: `"${line}" is not KEY=value` }] });
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

export function agentFormView(name) {
  const editing = Boolean(name);
  const inputs = {
    name: h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false", placeholder: "finn", disabled: editing }),
    template: h("select", {}),
    provider: h("select", {}),
    model: h("input", { type: "text", list: "model-options", autocomplete: "off" }),
    baseUrl: h("input", { type: "url", placeholder: "the provider's default" }),
    memory: h("input", { type: "number", min: 1, step: 1, placeholder: "template default" }),
    cpu: h("input", { type: "number", min: 0.01, step: 0.01, placeholder: "template default" }),
    env: h("textarea", { rows: 3, placeholder: "LOG_LEVEL=info", spellcheck: "false" }),
    secrets: h("input", { type: "text", placeholder: "OPENAI_API_KEY, GITHUB_TOKEN" }),
    project: h("input", { type: "text" }),
    tags: h("input", { type: "text", placeholder: "finance, eu" }),
    start: h("input", { type: "checkbox", checked: true }),
  };
  const models = h("datalist", { id: "model-options" });
  let providers = [];
  let original = null;

  function fillModels() {
    const provider = providers.find((p) => p.id === inputs.provider.value);
    models.replaceChildren(...((provider && provider.models) || []).map((m) => h("option", { value: m.id }, m.name || m.id)));
    inputs.model.placeholder = provider && provider.default_model ? provider.default_model : "template default";
  }
  inputs.provider.addEventListener("change", fillModels);

  const submit = h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create agent");
  const form = h(
    "form",
    { class: "card agent-form", "aria-label": editing ? `Edit ${name}` : "New agent", novalidate: true },
    h("h1", {}, editing ? `Edit ${name}` : "New agent"),
    field("Name", inputs.name, { name: "name", hint: "lowercase letters, digits and '-'; the agent's id" }),
    field("Template", inputs.template, { name: "template" }),
    h("div", { class: "row" },
      field("Provider", inputs.provider, { name: "config.llm_provider" }),
      field("Model", inputs.model, { name: "config.llm_model" }),
    ),
    models,
    field("Base URL", inputs.baseUrl, { name: "config.base_url", hint: "optional: another endpoint for the provider's API" }),
    h("div", { class: "row" },
      field("Memory (MB)", inputs.memory, { name: "config.memory_mb" }),
      field("CPU cores", inputs.cpu, { name: "config.cpu_cores" }),
    ),
    field("Environment", inputs.env, { name: "config.env_vars", hint: "KEY=value, one per line" }),
    field("Secrets", inputs.secrets, { name: "config.secrets", hint: "names in the secret store, comma-separated (values are set on the agent page)" }),
    h("div", { class: "row" },
      field("Project", inputs.project, { name: "project" }),
      field("Tags", inputs.tags, { name: "tags", hint: "comma-separated" }),
    ),
    editing ? null : h("label", { class: "check" }, inputs.start, " Start it now"),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "actions" }, submit, h("a", { href: editing ? `#/agents/${name}` : "#/" }, "Cancel")),
  );

  function config() {
    const c = {};
    if (inputs.provider.value) c.llm_provider = inputs.provider.value;
    if (inputs.model.value.trim()) c.llm_model = inputs.model.value.trim();
    if (inputs.baseUrl.value.trim()) c.base_url = inputs.baseUrl.value.trim();
    if (inputs.memory.value !== "") c.memory_mb = Number(inputs.memory.value);
    if (inputs.cpu.value !== "") c.cpu_cores = Number(inputs.cpu.value);
    const env = parseEnv(inputs.env.value);
    if (editing && original) {
      // env_vars merge on update: send a null for each variable the user removed.
      for (const key of Object.keys(original.config.env_vars || {})) if (!(key in env)) env[key] = null;
    }
    c.env_vars = env;
    c.secrets = list(inputs.secrets.value);
    if (editing && original) {
      // A PUT replaces the config: keep what this form does not show.
      for (const keep of ["preset", "restart_policy", "volumes", "system_prompt"]) {
        if (original.config[keep] !== null && original.config[keep] !== undefined && !(keep === "preset" && (c.memory_mb || c.cpu_cores))) c[keep] = original.config[keep];
      }
    }
    return c;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const body = { config: config(), project: inputs.project.value.trim() || null, tags: list(inputs.tags.value) };
      if (inputs.template.value) body.template = inputs.template.value;
      let saved;
      if (editing) {
        body.resource_version = original.resource_version;
        saved = await put(`/api/agents/${encodeURIComponent(name)}`, body);
      } else {
        body.name = inputs.name.value.trim();
        body.state = inputs.start.checked ? "running" : "stopped";
        saved = await post("/api/agents", body);
      }
      location.hash = `#/agents/${saved.id}`;
    } catch (err) {
      if (err instanceof ApiError) showErrors(form, err);
      else showErrors(form, { fields: [], message: String(err) });
    } finally {
      submit.disabled = false;
    }
  });

  (async () => {
    try {
      const [templates, catalog, agent] = await Promise.all([
        get("/api/templates"),
        get("/api/providers"),
        editing ? get(`/api/agents/${encodeURIComponent(name)}`) : null,
      ]);
      providers = catalog;
      inputs.template.replaceChildren(
        h("option", { value: "" }, "(none)"),
        ...templates.map((t) => h("option", { value: t.id }, `${t.name || t.id} — ${t.id}`)),
      );
      inputs.provider.replaceChildren(
        h("option", { value: "" }, "(from the template)"),
        ...providers.map((p) => h("option", { value: p.id }, p.name ? `${p.name} (${p.id})` : p.id)),
      );
      if (agent) {
        original = agent;
        inputs.name.value = agent.name;
        inputs.template.value = agent.template || "";
        inputs.provider.value = agent.config.llm_provider || "";
        inputs.model.value = agent.config.llm_model || "";
        inputs.baseUrl.value = agent.config.base_url || "";
        inputs.memory.value = agent.config.memory_mb ?? "";
        inputs.cpu.value = agent.config.cpu_cores ?? "";
        inputs.env.value = Object.entries(agent.config.env_vars || {}).map(([k, v]) => `${k}=${v}`).join("\n");
        inputs.secrets.value = (agent.config.secrets || []).join(", ");
        inputs.project.value = agent.project || "";
        inputs.tags.value = (agent.tags || []).join(", ");
      } else if (templates.length) {
        inputs.template.value = templates.some((t) => t.id === "local-assistant") ? "local-assistant" : templates[0].id;
      }
      fillModels();
      form.dataset.ready = "true";
    } catch (err) {
      banner(err.message);
    }
  })();

  queueMicrotask(() => (editing ? inputs.memory : inputs.name).focus());
  return { node: form };
}
