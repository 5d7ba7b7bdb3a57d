//! The editor without a display: its size follows the size saved in the plugin state while it
//! is closed, and it is resizable with a minimum size.

use std::sync::Arc;

use nice_plug::prelude::Editor;
use rtfx::plugin::Meters;
use rtfx::plugin::editor::RtfxEditor;
use rtfx::plugin::params::{DEFAULT_EDITOR_SIZE, RtfxParams};

#[test]
fn size_follows_the_saved_size_while_closed() {
    let params = Arc::new(RtfxParams::default());
    let editor = RtfxEditor::new(params.clone(), Arc::new(Meters::default()));
    // No host scale factor is known: one logical pixel is one physical pixel.
    let size = editor.size();
    assert_eq!((size.width, size.height), DEFAULT_EDITOR_SIZE);
    // A project with another size is loaded: the next query (before opening) follows it.
    *params.editor_size.write().unwrap() = (1300, 720);
    let size = editor.size();
    assert_eq!((size.width, size.height), (1300, 720));
    // Absurd saved sizes are limited to something usable.
    *params.editor_size.write().unwrap() = (5, 100_000);
    let size = editor.size();
    assert_eq!((size.width, size.height), (400, 3000));
}

#[test]
fn editor_is_resizable() {
    let editor = RtfxEditor::new(Arc::new(RtfxParams::default()), Arc::new(Meters::default()));
    let hint = editor.resize_hint();
    assert!(hint.can_resize && hint.can_resize_horizontally && hint.can_resize_vertically);
}
