import { loadConfig } from './src/cli/config/load.ts';
try { console.log(JSON.stringify(loadConfig(process.argv[2]), null, 1).slice(0, 3000)); } catch (e) { console.log(e.message); }
