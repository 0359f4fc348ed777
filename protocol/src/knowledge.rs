//! What a project knows about its world: style guides, characters, reference sets and prompt
//! templates. Each has a UUID and a name unique in its project (case-insensitive); methods take
//! either as `id`. Generation (the runs issue) composes prompts from them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

/// Names one entity of a project: `id` is its UUID or its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    /// The project's slug.
    pub project: String,
    /// The entity's UUID or name.
    pub id: String,
}

/// Deleting needs `confirm: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub project: String,
    /// The entity's UUID or name.
    pub id: String,
    /// Must be `true`.
    pub confirm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectParams {
    /// The project's slug.
    pub project: String,
}

// ---- style guides ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StyleGuide {
    pub id: String,
    pub project: String,
    pub name: String,
    /// How images in this style are drawn; composed into every prompt that uses the guide.
    pub instructions: String,
    pub palette: String,
    pub line: String,
    pub lighting: String,
    pub notes: String,
    /// Asset ids of style reference images, in order.
    pub reference_assets: Vec<String>,
    /// The project's default guide; exactly one guide is the default while any exist.
    pub is_default: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StyleGuideCreate {
    pub project: String,
    pub name: String,
    pub instructions: String,
    #[serde(default)]
    pub palette: String,
    #[serde(default)]
    pub line: String,
    #[serde(default)]
    pub lighting: String,
    #[serde(default)]
    pub notes: String,
    /// Asset ids of the project's style reference images.
    #[serde(default)]
    pub reference_assets: Vec<String>,
    /// Make this the default guide (the first guide of a project always is).
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StyleGuideUpdate {
    pub project: String,
    /// The guide's UUID or current name.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub palette: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lighting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Replaces the reference images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_assets: Option<Vec<String>>,
    /// `true` makes this the default guide. (To change the default, make another guide default.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StyleGuideList {
    pub style_guides: Vec<StyleGuide>,
}

// ---- characters ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Character {
    pub id: String,
    pub project: String,
    pub name: String,
    pub description: String,
    /// What generation says about the character, verbatim.
    pub prompt_text: String,
    /// What must never change about the character's face and build.
    pub identity_notes: String,
    /// Asset ids of the character's reference images, in order.
    pub reference_assets: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CharacterCreate {
    pub project: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub prompt_text: String,
    #[serde(default)]
    pub identity_notes: String,
    #[serde(default)]
    pub reference_assets: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CharacterUpdate {
    pub project: String,
    /// The character's UUID or current name.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_notes: Option<String>,
    /// Replaces the reference images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_assets: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CharacterList {
    pub characters: Vec<Character>,
}

// ---- reference sets ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSetKind {
    Style,
    Character,
    Scene,
    Lighting,
    #[default]
    Other,
}

impl ReferenceSetKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReferenceSetKind::Style => "style",
            ReferenceSetKind::Character => "character",
            ReferenceSetKind::Scene => "scene",
            ReferenceSetKind::Lighting => "lighting",
            ReferenceSetKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceSet {
    pub id: String,
    pub project: String,
    pub name: String,
    pub description: String,
    pub kind: ReferenceSetKind,
    /// In order.
    pub items: Vec<ReferenceItem>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceItem {
    /// An asset id of the same project; each asset at most once per set.
    pub asset: String,
    /// What the image shows or is for, e.g. `face-front`, `palette`.
    #[serde(default)]
    pub role: String,
    /// How much it counts, above 0 and at most 10 (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
    #[serde(default)]
    pub notes: String,
}

fn default_weight() -> f64 {
    1.0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSetCreate {
    pub project: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: ReferenceSetKind,
    #[serde(default)]
    pub items: Vec<ReferenceItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSetUpdate {
    pub project: String,
    /// The set's UUID or current name.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReferenceSetKind>,
    /// Replaces all items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ReferenceItem>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceItemAdd {
    pub project: String,
    /// The set's UUID or name.
    pub set: String,
    /// An asset id of the same project.
    pub asset: String,
    #[serde(default)]
    pub role: String,
    /// Above 0 and at most 10 (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceItemRemove {
    pub project: String,
    /// The set's UUID or name.
    pub set: String,
    pub asset: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceSetList {
    pub reference_sets: Vec<ReferenceSet>,
}

// ---- prompt templates ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PromptTemplate {
    pub id: String,
    pub project: String,
    pub name: String,
    /// Text with `{{variable}}` placeholders.
    pub body: String,
    /// Every variable the body uses, each used at least once.
    pub variables: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplateCreate {
    pub project: String,
    pub name: String,
    pub body: String,
    /// The variables the body uses (`[a-z_][a-z0-9_]*`).
    #[serde(default)]
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplateUpdate {
    pub project: String,
    /// The template's UUID or current name.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PromptTemplateList {
    pub prompt_templates: Vec<PromptTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderParams {
    pub project: String,
    /// The template's UUID or name.
    pub id: String,
    /// A value for every declared variable, and nothing else.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rendered {
    pub text: String,
}

/// Declares the five CRUD methods of one entity.
macro_rules! crud {
    ($namespace:literal, $what:literal, $entity:ty, $list:ty, $create:ty, $update:ty) => {
        /// `<namespace>.create`.
        pub enum Create {}
        impl Method for Create {
            const NAME: &'static str = concat!($namespace, ".create");
            const SUMMARY: &'static str = concat!("Create a ", $what);
            const MUTATING: bool = true;
            type Params = $create;
            type Output = $entity;
        }
        /// `<namespace>.list`.
        pub enum List {}
        impl Method for List {
            const NAME: &'static str = concat!($namespace, ".list");
            const SUMMARY: &'static str = concat!("List a project's ", $what, "s by name");
            const MUTATING: bool = false;
            const FOR_AGENTS: bool = true;
            type Params = super::ProjectParams;
            type Output = $list;
        }
        /// `<namespace>.get`.
        pub enum Get {}
        impl Method for Get {
            const NAME: &'static str = concat!($namespace, ".get");
            const SUMMARY: &'static str = concat!("Show one ", $what, " by UUID or name");
            const MUTATING: bool = false;
            const FOR_AGENTS: bool = true;
            type Params = super::EntityRef;
            type Output = $entity;
        }
        /// `<namespace>.update`.
        pub enum Update {}
        impl Method for Update {
            const NAME: &'static str = concat!($namespace, ".update");
            const SUMMARY: &'static str = concat!("Change the given fields of a ", $what);
            const MUTATING: bool = true;
            type Params = $update;
            type Output = $entity;
        }
        /// `<namespace>.delete`.
        pub enum Delete {}
        impl Method for Delete {
            const NAME: &'static str = concat!($namespace, ".delete");
            const SUMMARY: &'static str = concat!("Delete a ", $what, " (needs confirm: true)");
            const MUTATING: bool = true;
            type Params = super::DeleteParams;
            type Output = super::Deleted;
        }
    };
}

pub mod style_guide {
    //! `style_guide.*`.
    use super::*;
    crud!(
        "style_guide",
        "style guide",
        StyleGuide,
        StyleGuideList,
        StyleGuideCreate,
        StyleGuideUpdate
    );
}

pub mod character {
    //! `character.*`.
    use super::*;
    crud!(
        "character",
        "character",
        Character,
        CharacterList,
        CharacterCreate,
        CharacterUpdate
    );
}

pub mod reference_set {
    //! `reference_set.*`, with single-item changes.
    use super::*;
    crud!(
        "reference_set",
        "reference set",
        ReferenceSet,
        ReferenceSetList,
        ReferenceSetCreate,
        ReferenceSetUpdate
    );

    /// `reference_set.add_item`.
    pub enum AddItem {}
    impl Method for AddItem {
        const NAME: &'static str = "reference_set.add_item";
        const SUMMARY: &'static str =
            "Add an asset to a reference set (or change its role, weight, notes)";
        const MUTATING: bool = true;
        type Params = ReferenceItemAdd;
        type Output = ReferenceSet;
    }

    /// `reference_set.remove_item`.
    pub enum RemoveItem {}
    impl Method for RemoveItem {
        const NAME: &'static str = "reference_set.remove_item";
        const SUMMARY: &'static str = "Remove an asset from a reference set";
        const MUTATING: bool = true;
        type Params = ReferenceItemRemove;
        type Output = ReferenceSet;
    }
}

pub mod prompt_template {
    //! `prompt_template.*`, with rendering.
    use super::*;
    crud!(
        "prompt_template",
        "prompt template",
        PromptTemplate,
        PromptTemplateList,
        PromptTemplateCreate,
        PromptTemplateUpdate
    );

    /// `prompt_template.render`.
    pub enum Render {}
    impl Method for Render {
        const NAME: &'static str = "prompt_template.render";
        const SUMMARY: &'static str =
            "Fill a template's variables; fails naming any missing or unknown variable";
        const MUTATING: bool = false;
        const FOR_AGENTS: bool = true;
        type Params = RenderParams;
        type Output = Rendered;
    }
}
