// What a browser test needs around the browser: a central store made with outpost-admin, a real
// outpostd on a loopback port, devices that are the outpost CLI on encrypted replicas, and
// Debian's headless Chromium. Used by field.test.mjs and field-dashboard.steps.mjs (run by run.sh).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const src = process.env.OUTPOST_SOURCE_DIR;
export const build = process.env.OUTPOST_BUILD_DIR;
export const artifacts = process.env.OUTPOST_ARTIFACTS;
export const bin = {
  admin: path.join(build, 'server/outpost-admin'),
  outpostd: path.join(build, 'server/outpostd'),
  outpost: path.join(build, 'client-lib/outpost'),
};

export const browserOptions = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  ignoreHTTPSErrors: true,
  viewport: { width: 1280, height: 800 },
};

const started = Date.now();
export function step(text) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${text}`);
}

export function run(file, args, input) {
  return execFileSync(file, args, { input: input ?? '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

// A port nothing listens on now (so a server can be stopped and started again on it).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export async function waitFor(what, probe, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A central store in a new temporary directory, with dev certificates and the example schema.
export class Office {
  constructor(name) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `outpost-${name}-`));
    this.store = path.join(this.dir, 'central.db');
    this.server = null;
    this.port = 0;
    execFileSync('sh', [path.join(src, 'certs-example/make-dev-certs.sh'), path.join(this.dir, 'certs')], { stdio: 'ignore' });
    this.admin('init', '--schema', path.join(src, 'examples/outreach/schema.sql'),
               '--policy', path.join(src, 'examples/outreach/policy'),
               '--watch', path.join(src, 'examples/outreach/watch.json'));
  }

  admin(...args) {
    return run(bin.admin, ['--store', this.store, ...args]);
  }

  // A dashboard account (docs/dashboard.md): the password goes in on standard input.
  addUser(name, role, team, password) {
    const args = ['--store', this.store, 'user', 'add', name, '--role', role, '--password-fd', '0'];
    if (team) args.push('--team', team);
    run(bin.admin, args, `${password}\n`);
  }

  // The supervisors' dashboard of the running outpostd.
  get dashboardUrl() {
    return `https://127.0.0.1:${this.port}/dashboard/`;
  }

  get url() {
    return `wss://127.0.0.1:${this.port}/sync`;
  }

  // Starts outpostd on port (0: a free one) and resolves with the port it listens on.
  async start(port = 0) {
    fs.writeFileSync(path.join(this.dir, 'outpostd.ini'), `[server]
listen = 127.0.0.1
port = ${port}
cert = certs/server.pem
key = certs/server.key
ca = certs/ca.pem
[store]
path = central.db
[log]
level = info
`);
    const logPath = path.join(this.dir, 'outpostd.log');
    const offset = fs.existsSync(logPath) ? fs.statSync(logPath).size : 0;
    const log = fs.openSync(logPath, 'a');
    this.server = spawn(bin.outpostd, ['--config', path.join(this.dir, 'outpostd.ini')], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.port = await waitFor('outpostd to listen', () => {
      const m = fs.readFileSync(logPath, 'utf8').slice(offset).match(/outpostd listening .*port=(\d+)/);
      return m && Number(m[1]);
    });
    return this.port;
  }

  // Stops outpostd; a non-zero exit (under ASan: a leak or an error) is a failure.
  async stop() {
    const s = this.server;
    if (!s) return;
    this.server = null;
    if (s.exitCode === null) {
      s.kill('SIGTERM');
      await new Promise((r) => (s.exitCode !== null ? r() : s.once('exit', r)));
    }
    if (s.exitCode !== 0) throw new Error(`outpostd exited with ${s.exitCode} (signal ${s.signalCode})\n${this.logTail()}`);
  }

  logTail(lines = 20) {
    try {
      return fs.readFileSync(path.join(this.dir, 'outpostd.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch { return ''; }
  }

  // A device of worker `who`: an encrypted replica with its key file, enrolled here.
  enroll(who, name) {
    const dev = new Device(this.dir, who);
    const code = this.admin('enroll', who).match(/^ {4}([0-9A-Z-]+)$/m)[1];
    dev.cli('enroll', this.url, code, '--ca', path.join(this.dir, 'certs/ca.pem'), '--name', name ?? `${who}'s phone`);
    return dev;
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Logs in on the dashboard's login form and waits for the app to show.
export async function dashboardLogin(page, name, password) {
  await page.waitForSelector('#login-view:not([hidden])');
  await page.fill('#login-name', name);
  await page.fill('#login-password', password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#app-view:not([hidden])');
}

export class Device {
  constructor(dir, who) {
    this.who = who;
    this.db = path.join(dir, `${who}.db`);
    this.key = path.join(dir, `${who}.key`);
    fs.writeFileSync(this.key, randomBytes(32), { mode: 0o600 });
  }

  args(...rest) {
    return ['--db', this.db, '--key-file', this.key, ...rest];
  }

  cli(...args) {
    return run(bin.outpost, this.args(...args));
  }

  // The last line of a one-column query.
  query(sql) {
    return this.cli('query', sql).trim().split('\n').slice(1);
  }
}
