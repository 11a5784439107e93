#!/usr/bin/env node
// Flood a real agent on its socket and print its peak memory per scenario, and whether the owner's
// `secrets get` still worked during and after. Bigger than the CI test (tests/e2e/agentFlood.test.ts).
// Usage: npm run build && node scripts/agent-flood.mjs [scale]   (scale 1: a million requests, ~30 s)
// Linux only (reads /proc/PID/status; resets the peak through /proc/PID/clear_refs).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';

function sandbox(cli, password = 'pw-' + Math.random().toString(36).slice(2)) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kn-probe-'));
  const env = {
    PATH: process.env.PATH,
    HOME: path.join(root, 'home'),
    KEYNODE_PATH: path.join(root, 'node'),
    KEYNODE_PASSWORD: password,
    KEYNODE_NO_PROMPT: '1',
    XDG_RUNTIME_DIR: path.join(root, 'run'),
  };
  fs.mkdirSync(env.HOME, { recursive: true });
  fs.mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  const run = (args, { input = '', extraEnv = {} } = {}) => {
    const r = spawnSync(process.execPath, [cli, ...args], {
      input,
      env: Object.fromEntries(Object.entries({ ...env, ...extraEnv }).filter(([, v]) => v !== undefined)),
      maxBuffer: 1 << 30,
    });
    return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  return { root, env, run, password };
}
function rss(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)[1]) / 1024, hwm: Number(/VmHWM:\s+(\d+)/.exec(s)[1]) / 1024 };
}
const cli = process.argv[3] ?? new URL('../dist/cli/keynode.cjs', import.meta.url).pathname;
const scale = Number(process.argv[2] ?? 1);
const s = sandbox(cli);
s.run(['init', '--kdf-memory', '8192', '--kdf-iterations', '1', '--json']);
s.run(['vaults', 'create', 'app']);
s.run(['secrets', 'set', 'app:small'], { input: 'small-value' });
s.run(['secrets', 'set', 'app:big'], { input: Buffer.alloc(8 << 20, 0x41) });
const started = JSON.parse(s.run(['agent', 'start', '--background', '--json']).out);
const pid = started.pid;
const dir = path.join(s.env.XDG_RUNTIME_DIR, 'keynode');
const token = JSON.parse(
  fs.readFileSync(
    path.join(
      dir,
      fs.readdirSync(dir).find((f) => f.startsWith('session-')),
    ),
    'utf8',
  ),
).token;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const resetPeak = () => {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch (e) {
    console.log('clear_refs', e.message);
  }
};
const owner = () => {
  const r = s.run(['secrets', 'get', 'app:small'], { extraEnv: { KEYNODE_PASSWORD: undefined } });
  return r.code === 0 && r.out === 'small-value' ? 'ok' : `FAIL ${r.code} ${r.err.trim()}`;
};
const ownerAsync = () =>
  new Promise((resolve) => {
    import('node:child_process').then(({ spawn }) => {
      const c = spawn(process.execPath, [cli, 'secrets', 'get', 'app:small'], {
        env: Object.fromEntries(Object.entries({ ...s.env, KEYNODE_PASSWORD: undefined }).filter(([, v]) => v !== undefined)),
      });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('close', (code) => resolve(code === 0 && out === 'small-value' ? 'ok' : `FAIL ${code} ${err.trim()}`));
    });
  });
const connect = () =>
  new Promise((resolve, reject) => {
    const c = net.connect(started.socket);
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
const writeAll = (sock, buf) =>
  new Promise((resolve) => {
    if (sock.write(buf)) resolve(true);
    else {
      const done = () => {
        sock.off('drain', done);
        sock.off('close', done);
        resolve(false);
      };
      sock.once('drain', done);
      sock.once('close', done);
    }
  });
const results = [];
async function scenario(name, run) {
  await sleep(300);
  resetPeak();
  const before = rss(pid);
  const t0 = Date.now();
  const info = await run();
  let after;
  try {
    after = rss(pid);
  } catch {
    after = { rss: NaN, hwm: NaN };
  }
  const alive = (() => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  })();
  const own = alive ? owner() : 'agent dead';
  results.push({
    name,
    peakMiB: after.hwm.toFixed(0),
    rssBefore: before.rss.toFixed(0),
    rssAfter: after.rss.toFixed(0),
    seconds: ((Date.now() - t0) / 1000).toFixed(1),
    owner: own,
    ...info,
  });
  console.log(results.at(-1));
}
await scenario('baseline', async () => ({}));
await scenario(`pipelined unauthenticated requests x${1_000_000 * scale}`, async () => {
  const sock = await connect();
  sock.on('error', () => {});
  let replies = 0;
  sock.on('data', (d) => {
    for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) replies++;
  });
  sock.pause();
  const frame = '{"v":1,"id":1,"method":"secrets.get","params":{"vault":"app","path":"small"}}\n';
  const batch = Buffer.from(frame.repeat(1000));
  let sent = 0;
  let duringOwner = null;
  const total = 1_000_000 * scale;
  const writer = (async () => {
    for (; sent < total; sent += 1000) {
      await writeAll(sock, batch);
      if (sock.destroyed) break;
    }
  })();
  await sleep(1500);
  duringOwner = await ownerAsync();
  const sentWhilePaused = sent;
  sock.resume();
  await writer;
  for (let t = 0; replies < sent && t < 600; t++) await sleep(100);
  sock.destroy();
  return { sentBeforeReading: sentWhilePaused, replies, duringOwner };
});
await scenario('10 partial 120 MB frames, unauthenticated', async () => {
  const chunk = Buffer.alloc(1 << 20, 0x61);
  const outcomes = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const sock = await connect();
      let text = '';
      sock.on('data', (d) => (text += d));
      sock.on('error', () => {});
      let sentBytes = 0;
      for (let i = 0; i < 120 && !sock.destroyed; i++) {
        await writeAll(sock, chunk);
        sentBytes += chunk.length;
      }
      await sleep(200);
      sock.destroy();
      return { sentBytes, reply: text.slice(0, 90) };
    }),
  );
  return { accepted: outcomes.map((o) => o.sentBytes / 2 ** 20).join(','), reply: outcomes[0].reply };
});
await scenario('10 partial 100 MB frames, authenticated', async () => {
  const chunk = Buffer.alloc(1 << 20, 0x61);
  let during = null;
  const socks = [];
  const outcomes = Promise.all(
    Array.from({ length: 10 }, async () => {
      const sock = await connect();
      socks.push(sock);
      let text = '';
      sock.on('data', (d) => (text += d));
      sock.on('error', () => {});
      sock.write(`{"v":1,"id":0,"method":"node.status","token":"${token}"}\n`);
      await sleep(100);
      sock.write(`{"v":1,"id":1,"method":"secrets.set","token":"${token}","params":{"vault":"app","path":"x","value":"`);
      let sentBytes = 0;
      for (let i = 0; i < 100 && !sock.destroyed; i++) {
        const ok = await Promise.race([writeAll(sock, chunk), sleep(3000).then(() => 'stuck')]);
        if (ok === 'stuck') break;
        sentBytes += chunk.length;
      }
      return { sentBytes, text };
    }),
  );
  await sleep(2000);
  during = await ownerAsync();
  const o = await outcomes;
  for (const sock of socks) sock.destroy();
  return { sentMiB: o.map((x) => (x.sentBytes / 2 ** 20).toFixed(0)).join(','), duringOwner: during };
});
await scenario('unread 8 MiB replies (authenticated, 500 pipelined)', async () => {
  const sock = await connect();
  sock.on('error', () => {});
  sock.write(`{"v":1,"id":0,"method":"node.status","token":"${token}"}\n`);
  sock.pause();
  const frames = Array.from(
    { length: 500 },
    (_, i) => `{"v":1,"id":${i + 1},"method":"secrets.get","token":"${token}","params":{"vault":"app","path":"big"}}\n`,
  ).join('');
  sock.write(frames);
  await sleep(3000);
  const during = await ownerAsync();
  let peakWhileUnread;
  try {
    peakWhileUnread = rss(pid).hwm.toFixed(0);
  } catch {
    peakWhileUnread = 'agent died';
  }
  sock.destroy();
  return { duringOwner: during, peakWhileUnread };
});
await scenario(`${5000 * scale} idle connections`, async () => {
  const socks = [];
  let refused = 0;
  for (let i = 0; i < 5000 * scale; i++) {
    try {
      const c = await connect();
      c.on('error', () => {});
      c.on('data', () => {});
      c.on('close', () => refused++);
      socks.push(c);
    } catch {
      refused++;
    }
  }
  await sleep(500);
  const during = await ownerAsync();
  const open = socks.filter((c) => !c.destroyed && c.readyState === 'open').length;
  for (const c of socks) c.destroy();
  return { closedByAgent: refused, stillOpen: open, duringOwner: during };
});
console.table(results);
process.kill(pid, 'SIGKILL');
fs.rmSync(s.root, { recursive: true, force: true });
