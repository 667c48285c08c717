import { defineConfig } from 'vite';

// Assets from /assets/ (octoscope serve answers any other path with index.html,
// so absolute URLs keep working there); DASHBOARD_BASE=/prefix/ to host under a prefix.
export default defineConfig({
  base: process.env.DASHBOARD_BASE || '/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600 },
  // `npm run dev` proxies the API to a local `octoscope serve`.
  server: {
    proxy: {
      '/api': process.env.OCTOSCOPE_URL || 'http://127.0.0.1:8080',
      '/webhook': process.env.OCTOSCOPE_URL || 'http://127.0.0.1:8080',
    },
  },
});
