// Talking to the service: every call carries the access token the tab holds (sessionStorage),
// and a refused token (403 InvalidToken, as WildDuck answers) becomes an AuthError the page
// answers with its sign-in form.

const TOKEN_KEY = 'hookrouter.accessToken';

export class AuthError extends Error {}

export class HttpError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const keepToken = (value) => sessionStorage.setItem(TOKEN_KEY, value);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);

export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const stored = token();
  if (stored) headers['X-Access-Token'] = stored;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    signal,
  });
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (response.status === 403 && data && data.code === 'InvalidToken') {
    throw new AuthError(data.error || 'Access token required');
  }
  if (!response.ok) throw new HttpError((data && data.error) || `HTTP ${response.status}`, response.status);
  return data;
}
