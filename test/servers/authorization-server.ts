// Moved to src/cli/dev/servers/ (shipped for `cross-app-access dev`); re-exported for the tests.
export * from '../../src/cli/dev/servers/authorization-server.js';
