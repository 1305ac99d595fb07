export { loadConfig, type Config } from './config.js';
export { startReelay, type Reelay } from './reelay.js';
export type { Store } from './store/port.js';
export type { Provider } from './providers/port.js';
