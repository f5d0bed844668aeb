import { CrossAppAccessError } from '../../errors.js';
import { parseUrl } from '../../url-rules.js';
import { Diagnosis, see } from './step.js';

/** Node's and OpenSSL's error codes, walked down an error's `cause` chain (fetch wraps them twice). */
function causeCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'network_error') return code;
    if (e.name === 'TimeoutError') return 'TIMEOUT';
  }
  return undefined;
}

function lowestMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) message = e.message;
  return message;
}

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const TLS = /^(ERR_SSL_|ERR_TLS_|EPROTO$|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|ERR_CERT_|HOSTNAME_MISMATCH)/;

/**
 * What went wrong on the way to `url` before any answer, named (connection refused, DNS, TLS,
 * timeout), with the host and port; undefined when `error` is not a transport failure.
 */
export function networkFailure(error: unknown, url: string, who: string, timeoutMs: number): Diagnosis | undefined {
  const code = error instanceof CrossAppAccessError && error.code === 'timeout' ? 'TIMEOUT' : causeCode(error);
  const fetchFailed = (error instanceof TypeError && error.message === 'fetch failed') || (error instanceof CrossAppAccessError && error.code === 'network_error');
  if (!fetchFailed && code !== 'TIMEOUT') return undefined;
  const parsed = parseUrl(url);
  const host = parsed?.hostname ?? url;
  const port = parsed ? parsed.port || (parsed.protocol === 'https:' ? '443' : '80') : '?';
  const where = `${host} port ${port}`;
  if (lowestMessage(error) === 'bad port') {
    return new Diagnosis(`Could not reach ${who}: fetch never connects to port ${port} (a "bad port" of the Fetch standard).`, `Serve it on another port than ${port}.${see('unreachable')}`);
  }
  if (code === undefined) return new Diagnosis(`Could not reach ${who} at ${where}: ${lowestMessage(error)}.`, `Check the URL and the network (firewall, proxy).${see('unreachable')}`);
  if (code === 'ECONNREFUSED') {
    return new Diagnosis(`Could not reach ${who}: connection refused (ECONNREFUSED) at ${where}.`, `Nothing listens on ${where}: check that the server is running and the URL's host and port (${parsed?.origin ?? url}).${see('unreachable')}`);
  }
  if (DNS.has(code)) {
    return new Diagnosis(`Could not reach ${who}: the host name ${host} does not resolve (DNS: ${code}).`, `Check the host name in ${parsed?.origin ?? url}, and the machine's DNS (or VPN).${see('unreachable')}`);
  }
  if (TLS.test(code)) {
    const plain = code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG';
    return new Diagnosis(
      `Could not reach ${who}: the TLS handshake with ${where} failed (${code}).`,
      plain
        ? `The server at ${where} does not speak TLS: it looks like plain http; use the URL the server actually serves.${see('unreachable')}`
        : `Node does not trust the server's certificate, or it does not match ${host}: for a private CA, set NODE_EXTRA_CA_CERTS.${see('unreachable')}`,
    );
  }
  if (code === 'TIMEOUT') {
    return new Diagnosis(`${who} at ${where} did not answer within ${timeoutMs} ms.`, `Check the URL and the network (firewall, proxy); a slow server needs a larger --timeout.${see('unreachable')}`);
  }
  return new Diagnosis(`Could not reach ${who} at ${where}: ${code} (${lowestMessage(error)}).`, `Check the URL and the network (firewall, proxy).${see('unreachable')}`);
}

/** Runs `work` (requests to `url`); a transport failure becomes a Diagnosis that names it. */
export async function reaching<T>(url: string, who: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw networkFailure(error, url, who, timeoutMs) ?? error;
  }
}
