"""The UI's CSS: built-in theme, system fonts, and the classes of ``ui.viewmodels.render``."""

CSS = """
.gradio-container { max-width: 1240px !important; }
.st-dim { color: var(--body-text-color-subdued); }
.st-small { font-size: 0.85em; }
.st-title h1 { margin: 0; font-size: 1.5em; }
.st-title p { margin: 0.2em 0 0; }
.st-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8em;
  font-weight: 600; color: #fff; background: #6b7280; vertical-align: 1px; }
.st-badge.st-blue { background: #2563eb; } .st-badge.st-green { background: #16a34a; }
.st-badge.st-amber { background: #d97706; } .st-badge.st-red { background: #dc2626; }
.st-jobhead { display: flex; flex-direction: column; gap: 4px; }
.st-jobtitle { font-size: 1.1em; }
.st-reason { font-size: 0.92em; }
.st-progress .st-bar { height: 18px; }
.st-bar { position: relative; height: 10px; border-radius: 6px; overflow: hidden;
  background: var(--neutral-200); }
.dark .st-bar { background: var(--neutral-700); }
.st-fill { height: 100%; background: #2563eb; transition: width 0.4s ease; }
.st-active .st-fill { background-image: linear-gradient(45deg, rgba(255,255,255,.18) 25%,
  transparent 25%, transparent 50%, rgba(255,255,255,.18) 50%, rgba(255,255,255,.18) 75%,
  transparent 75%); background-size: 24px 24px; }
.st-fill.st-green { background: #16a34a; } .st-fill.st-amber { background: #d97706; }
.st-fill.st-red { background: #dc2626; }
.st-progress-text { margin-top: 4px; font-size: 0.95em; }
.st-gauges { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
  gap: 6px 16px; font-size: 0.85em; }
.st-gauge { display: grid; grid-template-columns: 42px 1fr; align-items: center; gap: 2px 8px; }
.st-gauge em { grid-column: 2; font-style: normal; color: var(--body-text-color-subdued); }
.st-bar.st-na { opacity: 0.4; }
.st-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr));
  gap: 12px; }
.st-compare .st-chart { max-width: 760px; }
.st-chart { margin: 0; padding: 8px; border: 1px solid var(--border-color-primary);
  border-radius: 8px; }
.st-chart figcaption { font-weight: 600; font-size: 0.92em; margin-bottom: 2px; }
.st-chart svg { width: 100%; height: auto; display: block; }
.st-chart .grid { stroke: var(--border-color-primary); stroke-width: 1; }
.st-chart .axis { stroke: var(--body-text-color-subdued); stroke-width: 1; }
.st-chart .tick { fill: var(--body-text-color-subdued); font-size: 11px; }
.st-chart-empty { height: 120px; display: flex; align-items: center; justify-content: center;
  color: var(--body-text-color-subdued); font-size: 0.9em; }
.st-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 0.82em; }
.st-legend i { display: inline-block; width: 12px; height: 3px; margin-right: 5px;
  vertical-align: middle; }
.st-warnings { margin: 0; padding-left: 18px; font-size: 0.9em; }
.st-warnings li { margin-bottom: 4px; }
.st-previews { display: flex; flex-direction: column; gap: 6px; }
.st-preview h4, .st-previews summary { margin: 2px 0; font-size: 0.9em; font-weight: 600; }
.st-players { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 2px 12px; }
.st-audio { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px;
  font-size: 0.82em; }
.st-audio span { flex: 1 1 100%; min-width: 0; overflow-wrap: anywhere; }
.st-audio audio { height: 30px; width: 220px; flex: 0 0 auto; }
.st-recon { grid-column: 1 / -1; display: grid; gap: 2px 12px;
  grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); }
.st-sound { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 6px; }
.st-sound img { width: 100%; height: auto; border-radius: 4px; display: block;
  margin-top: 4px; }
.st-sounds { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr));
  gap: 10px; }
.st-ab .st-players, .st-ab .st-images { grid-template-columns: repeat(2, minmax(0, 1fr)); }
.st-download-all { margin: 4px 0 8px; }
.st-log { max-height: 260px; overflow: auto; font-size: 0.78em; line-height: 1.35;
  white-space: pre-wrap; margin: 0; }
.st-table { border-collapse: collapse; width: 100%; font-size: 0.88em; border: none !important; }
.st-table th, .st-table td { border: none !important;
  border-bottom: 1px solid var(--border-color-primary) !important;
  padding: 4px 8px !important; text-align: left; vertical-align: top; }
.st-row-end { align-items: flex-end !important; }
.st-row-end > button { flex-grow: 0 !important; min-width: 120px; margin-bottom: 4px; }
.st-table th { font-weight: 600; }
.st-kv td:first-child { color: var(--body-text-color-subdued); width: 180px; }
.st-msg { padding: 6px 10px; border-radius: 6px; font-size: 0.92em; }
.st-msg-info { background: var(--neutral-100); }
.st-msg-ok { background: #dcfce7; color: #14532d; }
.st-msg-warn { background: #fef3c7; color: #78350f; }
.st-msg-error { background: #fee2e2; color: #7f1d1d; }
.st-field-error textarea, .st-field-error input { border-color: #dc2626 !important; }
.st-field-error .info-text { color: #b91c1c; font-weight: 400; }
.st-plan { margin: 2px 0; }
.dark .st-msg-info { background: var(--neutral-800); }
.st-report h4 { margin: 10px 0 4px; font-size: 0.92em; }
.st-images { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr));
  gap: 10px; }
.st-images figure { margin: 0; }
.st-images img { width: 100%; max-height: 320px; object-fit: contain; image-rendering: auto;
  background: var(--neutral-100); border-radius: 6px; }
.st-images figcaption { font-size: 0.8em; color: var(--body-text-color-subdued); }
.st-results-plots { grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); margin: 8px 0; }
.st-results-plots img { max-height: 440px; background: white; }
.st-worst { grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.st-worst img { image-rendering: pixelated; background: white; }
.st-detect-frame { position: relative; line-height: 0; }
.st-detect .st-detect-frame img { width: 100%; height: auto; max-height: none; border-radius: 0;
  image-rendering: pixelated; display: block; }
.st-detect-frame svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%;
  pointer-events: none; }
.st-detect-frame rect { fill: none; stroke-width: 2px; vector-effect: non-scaling-stroke; }
.st-detect-frame text { font-family: sans-serif; paint-order: stroke; stroke: white;
  stroke-width: 2px; vector-effect: non-scaling-stroke; }
.st-buttonlink { display: inline-block; padding: 6px 14px; border-radius: 6px;
  border: 1px solid var(--border-color-primary); text-decoration: none; }
.st-seen-item h4 { margin: 6px 0 2px; font-size: 0.9em; }
.st-seen-params { margin: 2px 0 8px; font-size: 0.82em; }
.st-seen-gallery img { image-rendering: pixelated; }
.st-counts td:not(:first-child), .st-counts th:not(:first-child) { text-align: right; }
"""
