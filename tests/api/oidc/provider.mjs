// A real OpenID Connect provider (panva's certified `oidc-provider`) for the SSO tests.
// argv: PORT REDIRECT_URI [ISSUER] (ISSUER: the test's pass-through proxy in front of PORT).
// Clients: `clawpen` (confidential) and `intruder` (another client, same redirect URI). Users: any
// login name; `alice` is in group `devs`, `bob` in `nobody`, `root` in `admins`, `vera` in `readers`.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const dir = process.env.CLAWPEN_OIDC_PROVIDER_DIR;
const { default: Provider } = await import(pathToFileURL(join(dir, "node_modules/oidc-provider/lib/index.js")));
const [port, redirectUri, issuer] = process.argv.slice(2);
const groups = { alice: ["devs"], bob: ["nobody"], root: ["admins"], vera: ["readers"] };

const provider = new Provider(issuer || `http://127.0.0.1:${port}`, {
  clients: ["clawpen", "intruder"].map((id) => ({
    client_id: id,
    client_secret: `${id}-secret-for-tests-only`,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  })),
  scopes: ["openid", "profile", "email", "groups"],
  claims: { openid: ["sub"], profile: ["preferred_username", "name"], email: ["email"], groups: ["groups"] },
  conformIdTokenClaims: false, // put the claims in the ID token, where Authlib reads them
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`, groups: groups[id] || [] };
      },
    };
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
