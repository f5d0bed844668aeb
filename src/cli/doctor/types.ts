import type { ClientAuthMethod } from '../../oauth/client-auth.js';

/** What the doctor checks: the MCP server, the IdP and both client registrations. */
export interface DoctorConfig {
  /** The MCP server's URL (its endpoint, e.g. `https://mcp.example.com/mcp`). */
  mcpUrl: string;
  idpIssuer?: string | undefined;
  idpTokenEndpoint?: string | undefined;
  idpClientId?: string | undefined;
  /** From the environment (XAA_IDP_CLIENT_SECRET), never argv. */
  idpClientSecret?: string | undefined;
  idpAuthMethod?: ClientAuthMethod | undefined;
  clientId?: string | undefined;
  /** From the environment (XAA_CLIENT_SECRET), never argv. */
  clientSecret?: string | undefined;
  authMethod?: ClientAuthMethod | undefined;
  /** The authorization server the client is registered at, when pinned. */
  clientIssuer?: string | undefined;
  /** The resource as configured in the application, to compare with the server's. */
  resource?: string | undefined;
  scope?: string | undefined;
  /** From the environment (XAA_ID_TOKEN) or standard input, never argv. */
  idToken?: string | undefined;
  timeoutMs: number;
}

export type StepStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One checked step: what it found (redacted: tokens only as fingerprints) and, on failure, the likely fix. */
export interface StepResult {
  id: string;
  title: string;
  status: StepStatus;
  durationMs: number;
  /** What was found, as short lines. */
  details: string[];
  /** The likely fix, in one sentence. */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  steps: StepResult[];
}
