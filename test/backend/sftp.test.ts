// SftpBackend against a real OpenSSH server on 127.0.0.1 (test/helpers/sshd.ts): blobs, the
// write guarantees, the refusals (host keys, logins) and what they tell the user.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SftpBackend, type SftpOptions } from '../../src/backend/sftp.js';
import { isSnapError, type SnapError } from '../../src/core/errors.js';
import { TestSshd, fingerprint, sshdForTests, sshdMissing } from '../helpers/sshd.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';

const missing = sshdMissing();
if (missing) console.warn(`SKIPPED: the SFTP backend tests need OpenSSH: ${missing}`);

async function failure(p: Promise<unknown>): Promise<SnapError> {
  try {
    await p;
  } catch (e) {
    return e as SnapError;
  }
  throw new Error('expected a failure');
}

describe.skipIf(missing)(`SftpBackend against a real sshd${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const t = sshdForTests();
  let sshd: TestSshd;
  let n = 0;
  beforeAll(() => {
    sshd = t.sshd;
  });

  /** A backend on a new folder of the server (absolute path unless `rel`). */
  function backend(o: SftpOptions & { rel?: boolean } = {}): { b: SftpBackend; dir: string } {
    const name = `repo${++n}`;
    const dir = o.rel ? path.join(sshd.home, name) : path.join(sshd.dir, name);
    const b = new SftpBackend(sshd.location(o.rel ? `~/${name}` : dir), { sshCommand: sshd.sshCommand(), retry: { attempts: 4, baseDelayMs: 50 }, ...o });
    t.track(b);
    return { b, dir };
  }

  it('puts, gets, ranges, stats, lists and deletes blobs, creating folders on demand, owner-only', async () => {
    const { b, dir } = backend();
    const big = randomBytes(3 * 1024 * 1024 + 12345); // more than one READ/WRITE request, and a short last one
    await b.put('data/ab/abcd', big);
    await b.put('snapshots/s1', Buffer.from('one'));
    await b.put('empty', new Uint8Array(0));
    expect((await b.get('data/ab/abcd')).equals(big)).toBe(true);
    expect((await b.get('empty')).length).toBe(0);
    expect((await b.getRange('data/ab/abcd', 262000, 600000)).equals(big.subarray(262000, 862000))).toBe(true);
    const scratch = Buffer.alloc(4 * 1024 * 1024);
    const into = await b.getInto!('data/ab/abcd', scratch);
    expect(into.buffer).toBe(scratch.buffer);
    expect(into.equals(big)).toBe(true);
    expect((await b.getInto!('snapshots/s1', Buffer.alloc(1))).toString()).toBe('one');
    expect(await b.stat('data/ab/abcd')).toEqual({ name: 'data/ab/abcd', size: big.length });
    expect(await b.stat('data/ab/none')).toBeUndefined();
    expect(await b.exists('snapshots/s1')).toBe(true);

    const all: string[] = [];
    for await (const x of b.list('')) all.push(`${x.name}:${x.size}`);
    expect(all.sort()).toEqual([`data/ab/abcd:${big.length}`, 'empty:0', 'snapshots/s1:3']);
    const snaps: string[] = [];
    for await (const x of b.list('snapshots/')) snaps.push(x.name);
    expect(snaps).toEqual(['snapshots/s1']);
    for await (const x of b.list('locks/')) throw new Error(`unexpected ${x.name}`);

    // on the server's disk: owner-only folders and files, nothing left over
    expect(fs.statSync(path.join(dir, 'data', 'ab')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'data', 'ab', 'abcd')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(dir, 'data', 'ab'))).toEqual(['abcd']);

    await b.delete('snapshots/s1');
    await b.delete('snapshots/s1'); // a missing blob is not an error
    expect(await b.exists('snapshots/s1')).toBe(false);
  });

  it('a missing blob is SNAP_MISSING_OBJECT; a short range SNAP_CORRUPT', async () => {
    const { b } = backend();
    await b.put('data/00/x', Buffer.from('0123456789'));
    expect((await failure(b.get('data/00/nothing'))).code).toBe('SNAP_MISSING_OBJECT');
    expect((await failure(b.getRange('data/00/nothing', 0, 1))).code).toBe('SNAP_MISSING_OBJECT');
    const short = await failure(b.getRange('data/00/x', 5, 10));
    expect(short.code).toBe('SNAP_CORRUPT');
    expect(short.message).toMatch(/shorter than expected/);
  });

  it('put replaces atomically; putIfAbsent never replaces an existing blob', async () => {
    const { b, dir } = backend();
    await b.put('config', Buffer.from('first'));
    await b.put('config', Buffer.from('second'));
    expect((await b.get('config')).toString()).toBe('second');
    expect(await b.putIfAbsent('config', Buffer.from('third'))).toBe(false);
    expect((await b.get('config')).toString()).toBe('second');
    expect(await b.putIfAbsent('keys/k1', Buffer.from('k'))).toBe(true);
    expect((await b.get('keys/k1')).toString()).toBe('k');
    // no temporary files remain after either path
    expect(fs.readdirSync(dir).sort()).toEqual(['config', 'keys']);
    expect(fs.readdirSync(path.join(dir, 'keys'))).toEqual(['k1']);
  });

  it('putIfAbsent from many sessions at once: exactly one wins, and its bytes are the blob', async () => {
    const { dir } = backend();
    const loc = sshd.location(dir);
    const clients = Array.from({ length: 6 }, () => {
      const b = new SftpBackend(loc, { sshCommand: sshd.sshCommand() });
      t.track(b);
      return b;
    });
    for (let round = 0; round < 3; round++) {
      const name = `locks/race${round}`;
      const datas = clients.map((_, i) => Buffer.from(`writer ${i} round ${round} `.repeat(5000)));
      const won = await Promise.all(clients.map((b, i) => b.putIfAbsent(name, datas[i]!)));
      expect(won.filter((w) => w)).toHaveLength(1);
      const winner = won.indexOf(true);
      expect((await clients[0]!.get(name)).equals(datas[winner]!)).toBe(true);
    }
  });

  it("without OpenSSH's extensions (the protocol's own RENAME): put replaces, putIfAbsent never does", async () => {
    const { b, dir } = backend({ openSshExtensions: false });
    expect(await b.capabilities()).toEqual({ atomicPutIfAbsent: false });
    await b.put('config', Buffer.from('first'));
    await b.put('config', Buffer.from('second'));
    expect((await b.get('config')).toString()).toBe('second');
    expect(await b.putIfAbsent('config', Buffer.from('third'))).toBe(false);
    expect(await b.putIfAbsent('locks/l', Buffer.from('mine'))).toBe(true);
    const racers = Array.from({ length: 5 }, () => {
      const r = new SftpBackend(b.location, { sshCommand: sshd.sshCommand(), openSshExtensions: false });
      t.track(r);
      return r;
    });
    const won = await Promise.all(racers.map((r, i) => r.putIfAbsent('locks/race', Buffer.from(`racer ${i}`))));
    expect(won.filter(Boolean)).toHaveLength(1); // OpenSSH's RENAME is link + unlink: still one winner
    expect((await b.get('locks/race')).toString()).toBe(`racer ${won.indexOf(true)}`);
    expect(fs.readdirSync(dir).sort()).toEqual(['config', 'locks']);
    expect(fs.readdirSync(path.join(dir, 'locks')).sort()).toEqual(['l', 'race']);
  });

  it('capabilities: putIfAbsent is atomic on OpenSSH with hard links, found by a probe that leaves nothing', async () => {
    const { b, dir } = backend();
    expect(await b.capabilities()).toEqual({ atomicPutIfAbsent: true });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('many calls in flight on one session (pipelined requests)', async () => {
    const { b } = backend();
    const blobs = Array.from({ length: 40 }, (_, i) => [`data/${(i % 4).toString(16).padStart(2, '0')}/b${i}`, randomBytes(1000 + i * 7919)] as const);
    await Promise.all(blobs.map(([name, data]) => b.put(name, data)));
    const got = await Promise.all(blobs.map(([name]) => b.get(name)));
    got.forEach((g, i) => expect(g.equals(blobs[i]![1])).toBe(true));
    let count = 0;
    for await (const _ of b.list('data/')) count++;
    expect(count).toBe(40);
  });

  it('sftp:.../~/PATH is relative to the login folder', async () => {
    const { b, dir } = backend({ rel: true });
    expect(b.location).toMatch(/\/~\/repo\d+$/);
    await b.put('snapshots/x', Buffer.from('rel'));
    expect(fs.readFileSync(path.join(dir, 'snapshots', 'x'), 'utf8')).toBe('rel');
  });

  it('temporary files of interrupted writes are not listed, and removeTempFiles removes the old ones', async () => {
    const { b, dir } = backend();
    await b.put('data/aa/blob', Buffer.from('x'));
    fs.writeFileSync(path.join(dir, 'data', 'aa', '.tmp-0123456789abcdef'), 'torn');
    const old = new Date(Date.now() - 3_600_000);
    fs.utimesSync(path.join(dir, 'data', 'aa', '.tmp-0123456789abcdef'), old, old);
    fs.writeFileSync(path.join(dir, 'data', 'aa', '.tmp-fresh'), 'in progress');
    const names: string[] = [];
    for await (const x of b.list('data/')) names.push(x.name);
    expect(names).toEqual(['data/aa/blob']);
    expect(await b.removeTempFiles('data/', 60_000)).toBe(1);
    expect(fs.readdirSync(path.join(dir, 'data', 'aa')).sort()).toEqual(['.tmp-fresh', 'blob']);
  });

  it('freeSpace is the server\'s free space (statvfs@openssh.com); removeTempFiles with topOnly sweeps the top folder alone', async () => {
    const { b, dir } = backend();
    await b.put('data/aa/blob', Buffer.from('x'));
    const s = fs.statfsSync(dir);
    const free = await b.freeSpace();
    expect(Number.isSafeInteger(free)).toBe(true);
    expect(Math.abs(free! - s.bavail * s.bsize)).toBeLessThan(256 * 1024 * 1024);
    // Without OpenSSH's extensions the server cannot say.
    const { b: plain } = backend({ openSshExtensions: false });
    expect(await plain.freeSpace()).toBeUndefined();
    fs.writeFileSync(path.join(dir, '.tmp-top'), 'a reserve cut short');
    fs.writeFileSync(path.join(dir, 'data', 'aa', '.tmp-deep'), 'a pack cut short');
    expect(await b.removeTempFiles('', 0, true)).toBe(1);
    expect(fs.readdirSync(dir).sort()).toEqual(['data']);
    expect(fs.readdirSync(path.join(dir, 'data', 'aa')).sort()).toEqual(['.tmp-deep', 'blob']);
  });

  it("honours the ssh config: a Host alias with its HostName, Port and User; a key held only by an agent", async () => {
    const agentSock = path.join(sshd.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 20));
      const add = spawnSync('ssh-add', [sshd.userKey], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, encoding: 'utf8' });
      expect(add.status, add.stderr).toBe(0);
      const config = sshd.clientConfig({
        agent: agentSock,
        host: ['Host backup-box', '  HostName 127.0.0.1', `  Port ${sshd.port}`, `  User ${sshd.user}`],
      });
      const dir = path.join(sshd.dir, `alias${++n}`);
      const b = t.track(new SftpBackend(`sftp:backup-box${dir}`, { sshCommand: ['ssh', '-F', config] }));
      expect(b.argv.slice(-4)).toEqual(['-s', '--', 'backup-box', 'sftp']); // no -p, no -l: the config decides
      await b.put('config', Buffer.from('via the agent'));
      expect(fs.readFileSync(path.join(dir, 'config'), 'utf8')).toBe('via the agent');
    } finally {
      agent.kill();
    }
  });

  it('an unknown host key is refused, with the fingerprint the server presented, and not retried', async () => {
    const empty = path.join(sshd.dir, 'known_hosts.empty');
    fs.writeFileSync(empty, '', { mode: 0o600 });
    const counter = await TcpFaultProxy.start(sshd.port); // forwards faithfully, counts connections
    try {
      const b = t.track(new SftpBackend(sshd.location(path.join(sshd.dir, 'hk'), counter.port), { sshCommand: sshd.sshCommand({ knownHosts: empty }), retry: { attempts: 6, baseDelayMs: 10 } }));
      const e = await failure(b.put('config', Buffer.from('x')));
      expect(isSnapError(e, 'SNAP_HOST_KEY')).toBe(true);
      expect(e.message).toContain(sshd.hostKeyFingerprint);
      expect(e.message).toMatch(/not in known_hosts/);
      expect(counter.connections).toBe(1); // not retried
      expect(fs.readFileSync(empty, 'utf8')).toBe(''); // never added
    } finally {
      await counter.close();
    }
  });

  it('a changed host key is refused, with the new fingerprint', async () => {
    const other = path.join(sshd.dir, 'other_host_key');
    fs.rmSync(other, { force: true });
    fs.rmSync(`${other}.pub`, { force: true });
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]).status).toBe(0);
    const wrong = path.join(sshd.dir, 'known_hosts.wrong');
    fs.writeFileSync(wrong, `snap-test-sshd ${fs.readFileSync(`${other}.pub`, 'utf8')}`, { mode: 0o600 });
    const { b } = backend({ sshCommand: sshd.sshCommand({ knownHosts: wrong }) });
    const e = await failure(b.get('config'));
    expect(isSnapError(e, 'SNAP_HOST_KEY')).toBe(true);
    expect(e.message).toMatch(/differs from the one in known_hosts/);
    expect(e.message).toContain(sshd.hostKeyFingerprint);
    expect(e.message).not.toContain(fingerprint(`${other}.pub`));
    expect(e.message).toContain('known_hosts.wrong:1'); // where the old key is
  });

  it('a refused login is SNAP_PERMISSION', async () => {
    const stranger = path.join(sshd.dir, 'stranger_key');
    fs.rmSync(stranger, { force: true });
    fs.rmSync(`${stranger}.pub`, { force: true });
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]).status).toBe(0);
    const { b } = backend({ sshCommand: sshd.sshCommand({ identity: stranger }) });
    const e = await failure(b.stat('config'));
    expect(isSnapError(e, 'SNAP_PERMISSION')).toBe(true);
    expect(e.message).toMatch(/Permission denied \(publickey\)/);
  });

  it('no server listening: retried, then SNAP_REMOTE saying how many attempts', async () => {
    const { b } = backend({ retry: { attempts: 3, baseDelayMs: 20 } });
    const closedPort = new SftpBackend(sshd.location(path.join(sshd.dir, 'nowhere'), 1), { sshCommand: sshd.sshCommand(), retry: { attempts: 3, baseDelayMs: 20 } });
    t.track(closedPort);
    const e = await failure(closedPort.get('config'));
    expect(isSnapError(e, 'SNAP_REMOTE')).toBe(true);
    expect(e.message).toMatch(/Connection refused/);
    expect(e.message).toMatch(/gave up after 3 attempts/);
    // The location once, in what was being done: not again before what ssh said.
    const where = sshd.location(path.join(sshd.dir, 'nowhere'), 1);
    expect(e.message.split(where).length - 1).toBe(1);
    expect(e.message).toMatch(new RegExp(`^reading config in ${where.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ssh: connect to host`));
    await b.put('x', Buffer.from('still fine'));
  });

  it('a server without that subsystem, a missing ssh, and output that is not SFTP are SNAP_REMOTE', async () => {
    const noSub = new SftpBackend(sshd.location('/x'), { sftpCommand: sshd.sftpCommand('no-such-subsystem') });
    const noSsh = new SftpBackend(sshd.location('/x'), { sshCommand: ['/nonexistent/ssh'] });
    const garbage = new SftpBackend(sshd.location('/x'), { sftpCommand: ['sh', '-c', 'echo "Welcome to the server"; sleep 5'] });
    for (const x of [noSub, noSsh, garbage]) t.track(x);
    const e1 = await failure(noSub.stat('config'));
    expect(e1.code).toBe('SNAP_REMOTE');
    expect(e1.message).toMatch(/does not offer SFTP/);
    const e2 = await failure(noSsh.stat('config'));
    expect(e2.code).toBe('SNAP_REMOTE');
    expect(e2.message).toMatch(/cannot run "\/nonexistent\/ssh": not found/);
    const e3 = await failure(garbage.stat('config'));
    expect(e3.code).toBe('SNAP_REMOTE');
    expect(e3.message).toMatch(/not SFTP .*Welcome/);
  });

  it('a server that repeats a folder\'s names instead of ending the read: the listing is refused (SNAP_REMOTE), not looped over', async () => {
    const { b, dir } = backend();
    for (const n of ['a', 'b', 'c']) await b.put(`snapshots/${n}`, Buffer.from(n));
    const proxy = path.join(import.meta.dirname, '..', 'helpers', 'sftp-repeat-proxy.mjs');
    const bad = t.track(new SftpBackend(sshd.location(dir), { sftpCommand: [process.execPath, proxy, ...sshd.sftpCommand('sftp')] }));
    const listed = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const x of bad.list('snapshots/')) out.push(x.name);
      return out;
    };
    const e = await failure(listed());
    expect(e.code, e.message).toBe('SNAP_REMOTE');
    expect(e.message).toMatch(/listing snapshots in sftp:.*: the server listed '(\.|\.\.|a|b|c)' twice in one folder/);
    // The same server, read straight: each name once.
    const names: string[] = [];
    for await (const x of b.list('snapshots/')) names.push(x.name);
    expect(names.sort()).toEqual(['snapshots/a', 'snapshots/b', 'snapshots/c']);
  });

  it('a file where a folder of the repository goes: the failure names it, not only the SFTP status', async () => {
    const { dir } = backend();
    fs.writeFileSync(dir, 'a file');
    const under = new SftpBackend(sshd.location(path.join(dir, 'repo')), { sshCommand: sshd.sshCommand() });
    t.track(under);
    const e = await failure(under.put('config', Buffer.from('x')));
    expect(e.code).toBe('SNAP_IO');
    expect(e.message).toMatch(new RegExp(`^writing config in sftp:.*: ${dir}(/repo)? on the server is not a folder`));
    expect(fs.readFileSync(dir, 'utf8')).toBe('a file');
  });

  it('a read-only server (sftp-server -R): reads work, writes are SNAP_PERMISSION naming the blob', async () => {
    const { b, dir } = backend();
    await b.put('snapshots/s', Buffer.from('kept'));
    const ro = new SftpBackend(sshd.location(dir), { sftpCommand: sshd.sftpCommand('sftp-readonly') });
    t.track(ro);
    expect((await ro.get('snapshots/s')).toString()).toBe('kept');
    const e = await failure(ro.put('snapshots/t', Buffer.from('x')));
    expect(e.code).toBe('SNAP_PERMISSION');
    expect(e.message).toMatch(/writing snapshots\/t in sftp:.*: permission denied/);
    expect((await failure(ro.delete('snapshots/s'))).code).toBe('SNAP_PERMISSION');
    expect(fs.readdirSync(path.join(dir, 'snapshots'))).toEqual(['s']);
  });
});
