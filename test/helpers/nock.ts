/**
 * nock for one describe block: active only there, with real connections allowed to loopback only
 * (the local servers), and every interceptor removed after each test.
 */
import nock from 'nock';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

export function useNock(): void {
  beforeAll(() => {
    nock.activate();
  });
  beforeEach(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
  afterAll(() => {
    nock.restore();
  });
}
