import type { CrossAppAccessError } from '../../errors.js';
import { authenticatedInitialize, jwtBearer, tokenExchange } from './grant-steps.js';
import { probe } from './probe-step.js';
import { protectedResource } from './resource-step.js';
import { authorizationServer, idpMetadata } from './server-steps.js';
import { DOCS_URL, runStep, see, Step } from './step.js';
import type { DoctorConfig, DoctorReport, StepResult } from './types.js';

/** The likely fix for a typed error of the package, by code and OAuth error, in one sentence. */
function advice(error: CrossAppAccessError): string {
  const where = error.stage === 'token_exchange' ? 'IdP' : 'authorization server';
  switch (error.error ?? error.code) {
    case 'invalid_client':
      return error.stage === 'token_exchange'
        ? `The IdP refused this client's authentication: check --idp-client-id, XAA_IDP_CLIENT_SECRET and --idp-auth-method.${see('invalid-client')}`
        : `The authorization server refused this client's authentication: check --client-id and XAA_CLIENT_SECRET, and set --auth-method to the method the client is registered with (a server may list several but allow each client only one).${see('invalid-client')}`;
    case 'invalid_grant':
      return error.stage === 'token_exchange'
        ? `The IdP rejected the ID token: it is expired, or its aud is not this IdP client (--idp-client-id); sign in again and retry.${see('id-token-rejected')}`
        : `The authorization server refused the ID-JAG: it does not trust this IdP, or the ID-JAG's aud, client_id or resource do not match its registration.${see('id-jag-rejected')}`;
    case 'unsupported_grant_type':
      return `The ${where} does not support this grant (token exchange at the IdP, jwt-bearer at the authorization server) for this client; ask its administrator.${see('unsupported-grant-type')}`;
    case 'invalid_target':
    case 'access_denied':
      return `The ${where}'s policy does not allow this user or client to reach this resource; ask its administrator.${see('access-denied')}`;
    case 'invalid_scope':
      return `The ${where} refused the scope: give --scope with scopes it allows.${see('invalid-scope')}`;
    case 'resource_mismatch':
      return `The metadata describes another resource than this URL, so no token for it may be sent here (RFC 9728 §3.3).${see('resource-mismatch')}`;
    case 'unsupported_auth_method':
      return `No client authentication method fits: set --${error.stage === 'token_exchange' ? 'idp-' : ''}auth-method to the one the client is registered with, or give its secret (${error.stage === 'token_exchange' ? 'XAA_IDP_CLIENT_SECRET' : 'XAA_CLIENT_SECRET'}).${see('auth-method-not-listed')}`;
    case 'insecure_url':
      return `Use https: URLs (plain http: is allowed only on loopback).${see('insecure-url')}`;
    case 'timeout':
    case 'network_error':
      return `The ${error.stage === 'discovery' ? 'server' : where} could not be reached: check the URL and the network.${see('unreachable')}`;
    default:
      return `See the message above (${error.code}); ${DOCS_URL}/errors.md says what to do.`;
  }
}

const skipped = (id: string, title: string, why: string): StepResult => ({ id, title, status: 'skip', durationMs: 0, details: [why] });

/** Runs every check in order; a step that fails skips the steps that need its result. */
export async function runDoctor(config: DoctorConfig): Promise<DoctorReport> {
  const steps: StepResult[] = [];
  const run = async <T>(id: string, title: string, work: (step: Step) => Promise<T>): Promise<T | undefined> => {
    const { result, value } = await runStep(new Step(id, title), work, advice);
    steps.push(result);
    return result.status === 'fail' ? undefined : value;
  };
  const challenge = await run('probe', 'MCP server answers 401 with a Bearer challenge', (s) => probe(config, s));
  const found = challenge && (await run('protected-resource', 'Protected-resource metadata (RFC 9728)', (s) => protectedResource(config, challenge, s)));
  const as = found && (await run('authorization-server', 'Authorization-server metadata (RFC 8414)', (s) => authorizationServer(config, found, s)));
  const idp = await run('idp', 'IdP metadata and token endpoint', (s) => idpMetadata(config, { found, as }, s));
  if (!found || !as || !idp) steps.push(skipped('token-exchange', 'Token exchange at the IdP (RFC 8693)', 'skipped: an earlier step failed'));
  else if (config.idToken === undefined) steps.push(skipped('token-exchange', 'Token exchange at the IdP (RFC 8693)', 'skipped: no ID token (XAA_ID_TOKEN, or --id-token-stdin)'));
  else {
    const idJag = await run('token-exchange', 'Token exchange at the IdP (RFC 8693): ID token → ID-JAG', (s) => tokenExchange(config, idp, as, found, s));
    const token = idJag && (await run('jwt-bearer', 'jwt-bearer grant at the authorization server (RFC 7523): ID-JAG → access token', (s) => jwtBearer(config, as, found, idJag, s)));
    if (token) await run('mcp', 'Authenticated MCP initialize', (s) => authenticatedInitialize(config, token, s));
  }
  return { ok: steps.every((s) => s.status === 'pass' || s.status === 'warn'), steps };
}
