// What --github-oidc is configured with, and the checks start-up makes on
// it: apart from the OIDC client (oidc.ts), so that option parsing does not
// load the client in a start that never uses it.

export const EXCHANGE_URL = 'https://auth.openai.com/oauth/token';
/** Test hook (documented in the README): where the exchange goes instead. */
export const EXCHANGE_URL_ENV = 'CODEX_RESPONSES_API_PROXY_TOKEN_EXCHANGE_URL';

export interface OidcConfig {
  audience: string;
  identityProviderId: string;
  serviceAccountId: string;
  requestUrl: URL;
  exchangeUrl: URL;
}

/** The URL if a secret may be sent to it (absolute https, no user info, no fragment); otherwise why not. */
export function httpsUrl(raw: string): URL | 'invalid' | 'not-https' {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'invalid';
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.hash || raw.includes('#') || !url.hostname) return 'not-https';
  return url;
}
