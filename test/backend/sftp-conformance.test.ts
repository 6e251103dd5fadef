// The backend conformance suite against SftpBackend on a real OpenSSH server (test/helpers/sshd.ts),
// each test on a fresh folder of the server, through a fresh ssh session.
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { SftpBackend } from '../../src/backend/sftp.js';
import { TestSshd, sshdMissing } from '../helpers/sshd.js';
import { backendConformance } from './conformance.js';

const missing = sshdMissing();
if (missing) console.warn(`SKIPPED: the SFTP backend conformance tests need OpenSSH: ${missing}`);
let sshd: TestSshd | undefined;
let n = 0;

beforeAll(async () => {
  if (!missing) sshd = await TestSshd.start();
});
afterAll(async () => {
  await sshd?.close();
});

backendConformance('SftpBackend (OpenSSH on 127.0.0.1)', {
  unavailable: () => missing,
  async make() {
    if (!sshd) throw new Error('sshd did not start');
    const dir = path.join(sshd.dir, `repo${++n}`);
    return new SftpBackend(sshd.location(dir), { sshCommand: sshd.sshCommand() });
  },
});
