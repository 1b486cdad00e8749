// oidc-provider ships no types; the tests use a small part of it.
declare module 'oidc-provider' {
  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    listen(port: number, host: string, cb?: () => void): import('node:http').Server;
  }
}
