// A description of the machine the numbers were measured on.
import * as fs from 'node:fs';
import * as os from 'node:os';

export function describeMachine(): Record<string, string> {
  const cpus = os.cpus();
  return {
    cpu: cpuModel() ?? cpus[0]?.model ?? 'unknown',
    cores: String(cpus.length),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: osName(),
    kernel: `${os.type()} ${os.release()}`,
    node: `${process.version} (V8 ${process.versions.v8}, zlib ${process.versions.zlib})`,
  };
}

function cpuModel(): string | undefined {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1];
    const flags = /^flags\s*:\s*(.+)$/m.exec(info)?.[1]?.split(' ') ?? [];
    const notable = ['sha_ni', 'aes', 'avx2', 'avx512f'].filter((f) => flags.includes(f));
    return model ? `${model}${notable.length ? ` (${notable.join(', ')})` : ''}` : undefined;
  } catch {
    return undefined;
  }
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.platform();
  } catch {
    return os.platform();
  }
}
