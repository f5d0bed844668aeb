// Run before `npm test`: the tests need a real redis-server on PATH (they start their own on a free
// loopback port) and redis-cli (it joins their 3-master Redis Cluster; same package). When they are
// missing, install them where that can be done without asking (Debian or Ubuntu, as root or with
// password-less sudo); elsewhere stop at once with the one command to run.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const found = (command, args = ['--version']) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;

if (process.env.XAA_SKIP_REDIS === '1' || (found('redis-server') && found('redis-cli'))) process.exit(0);

const script = join(dirname(fileURLToPath(import.meta.url)), 'install-redis.sh');
const root = process.getuid?.() === 0;
const apt = found('apt-get', ['--version']);
if (apt && (root || found('sudo', ['-n', 'true']))) {
  console.log('redis-server is not installed: installing Debian\'s package (its service is not started)...');
  const run = root ? spawnSync('bash', [script], { stdio: 'inherit' }) : spawnSync('sudo', ['-n', 'bash', script], { stdio: 'inherit' });
  if (run.status === 0 && found('redis-server') && found('redis-cli')) process.exit(0);
  console.error('Installing redis-server failed (see above).');
  process.exit(1);
}
const how = apt ? 'sudo apt-get install -y redis-server' : process.platform === 'darwin' ? 'brew install redis' : 'install redis-server (7 or later) with your package manager';
console.error(`The tests need redis-server and redis-cli on PATH, and they are not installed. Run:\n\n  ${how}\n\nthen npm test again (or set XAA_SKIP_REDIS=1 to skip the Redis tests).`);
process.exit(1);
