//! Rows of the knowledge tables: style guides, characters, reference sets, prompt templates, and
//! their reference images.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

/// One of the knowledge tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    StyleGuide,
    Character,
    ReferenceSet,
    PromptTemplate,
}

impl Entity {
    fn table(self) -> &'static str {
        match self {
            Entity::StyleGuide => "style_guides",
            Entity::Character => "characters",
            Entity::ReferenceSet => "reference_sets",
            Entity::PromptTemplate => "prompt_templates",
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Entity::StyleGuide => "style guide",
            Entity::Character => "character",
            Entity::ReferenceSet => "reference set",
            Entity::PromptTemplate => "prompt template",
        }
    }
}

/// The fields every knowledge row has.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub id: String,
    pub project_slug: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StyleGuideRow {
    pub common: Common,
    pub instructions: String,
    pub palette: String,
    pub line: String,
    pub lighting: String,
    pub notes: String,
    pub is_default: bool,
    pub references: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CharacterRow {
    pub common: Common,
    pub description: String,
    pub prompt_text: String,
    pub identity_notes: String,
    pub references: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub asset_id: String,
    pub role: String,
    pub weight: f64,
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceSetRow {
    pub common: Common,
    pub description: String,
    pub kind: String,
    pub items: Vec<ItemRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromptTemplateRow {
    pub common: Common,
    pub body: String,
    pub variables: Vec<String>,
}

/// The id of the entity named by `key` (its UUID or its name, any case).
pub fn resolve(
    conn: &Connection,
    entity: Entity,
    project_id: &str,
    key: &str,
) -> Result<String, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT id FROM {} WHERE project_id = ?1 AND (id = ?2 OR name_key = ?3)",
        entity.table()
    ))?
    .query_row(
        params![project_id, key, crate::knowledge::name_key(key)],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::EntityNotFound {
        what: entity.what(),
        key: key.to_owned(),
    })
}

/// The ids of `entity` rows of a project, by name.
pub fn ids(conn: &Connection, entity: Entity, project_id: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT id FROM {} WHERE project_id = ?1 ORDER BY name_key",
        entity.table()
    ))?;
    let rows = statement.query_map([project_id], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes an entity and returns the name it had.
pub fn delete(conn: &Connection, entity: Entity, id: &str) -> Result<String, StoreError> {
    conn.query_row(
        &format!(
            "DELETE FROM {} WHERE id = ?1 RETURNING name",
            entity.table()
        ),
        [id],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::EntityNotFound {
        what: entity.what(),
        key: id.to_owned(),
    })
}

/// Turns a unique-name violation into [`StoreError::NameTaken`].
fn name_taken(err: rusqlite::Error, entity: Entity, name: &str) -> StoreError {
    match err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::NameTaken {
                what: entity.what(),
                name: name.to_owned(),
            }
        }
        other => StoreError::Sqlite(other),
    }
}

fn common(row: &Row<'_>) -> rusqlite::Result<Common> {
    Ok(Common {
        id: row.get("id")?,
        project_slug: row.get("slug")?,
        name: row.get("name")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Checks that every asset belongs to the project.
fn check_assets(conn: &Connection, project_id: &str, assets: &[String]) -> Result<(), StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT 1 FROM assets WHERE id = ?1 AND project_id = ?2")?;
    for asset in assets {
        if !statement.exists(params![asset, project_id])? {
            return Err(StoreError::AssetNotFound(asset.clone()));
        }
    }
    Ok(())
}

// ---- style guides ----

pub fn put_style_guide(
    conn: &Connection,
    project_id: &str,
    guide: &StyleGuideRow,
) -> Result<(), StoreError> {
    let c = &guide.common;
    check_assets(conn, project_id, &guide.references)?;
    if guide.is_default {
        conn.execute(
            "UPDATE style_guides SET is_default = 0 WHERE project_id = ?1 AND id <> ?2",
            params![project_id, c.id],
        )?;
    }
    conn.execute(
        "INSERT INTO style_guides (id, project_id, name, name_key, instructions, palette, line,
             lighting, notes, is_default, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET name = ?3, name_key = ?4, instructions = ?5, palette = ?6,
             line = ?7, lighting = ?8, notes = ?9, is_default = ?10, updated_at = ?12",
        params![
            c.id,
            project_id,
            c.name,
            crate::knowledge::name_key(&c.name),
            guide.instructions,
            guide.palette,
            guide.line,
            guide.lighting,
            guide.notes,
            guide.is_default,
            c.created_at,
            c.updated_at
        ],
    )
    .map_err(|err| name_taken(err, Entity::StyleGuide, &c.name))?;
    conn.execute(
        "DELETE FROM style_guide_references WHERE style_guide_id = ?1",
        [&c.id],
    )?;
    for (position, asset) in guide.references.iter().enumerate() {
        conn.execute(
            "INSERT INTO style_guide_references (style_guide_id, asset_id, position) VALUES (?1, ?2, ?3)",
            params![c.id, asset, position as i64],
        )?;
    }
    Ok(())
}

pub fn get_style_guide(conn: &Connection, id: &str) -> Result<StyleGuideRow, StoreError> {
    let mut guide = conn
        .prepare_cached(
            "SELECT g.*, p.slug FROM style_guides g JOIN projects p ON p.id = g.project_id WHERE g.id = ?1",
        )?
        .query_row([id], |row| {
            Ok(StyleGuideRow {
                common: common(row)?,
                instructions: row.get("instructions")?,
                palette: row.get("palette")?,
                line: row.get("line")?,
                lighting: row.get("lighting")?,
                notes: row.get("notes")?,
                is_default: row.get("is_default")?,
                references: Vec::new(),
            })
        })?;
    guide.references = references(conn, "style_guide_references", "style_guide_id", id)?;
    Ok(guide)
}

/// Whether the project has any style guide yet.
pub fn has_style_guides(conn: &Connection, project_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM style_guides WHERE project_id = ?1")?
        .exists([project_id])?)
}

/// Makes the oldest guide the default when none is (after the default was deleted).
pub fn ensure_default_style_guide(conn: &Connection, project_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE style_guides SET is_default = 1
         WHERE id = (SELECT id FROM style_guides WHERE project_id = ?1 ORDER BY created_at, rowid LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM style_guides WHERE project_id = ?1 AND is_default = 1)",
        [project_id],
    )?;
    Ok(())
}

fn references(
    conn: &Connection,
    table: &str,
    owner_column: &str,
    owner: &str,
) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT asset_id FROM {table} WHERE {owner_column} = ?1 ORDER BY position"
    ))?;
    let rows = statement.query_map([owner], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- characters ----

pub fn put_character(
    conn: &Connection,
    project_id: &str,
    character: &CharacterRow,
) -> Result<(), StoreError> {
    let c = &character.common;
    check_assets(conn, project_id, &character.references)?;
    conn.execute(
        "INSERT INTO characters (id, project_id, name, name_key, description, prompt_text,
             identity_notes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET name = ?3, name_key = ?4, description = ?5,
             prompt_text = ?6, identity_notes = ?7, updated_at = ?9",
        params![
            c.id,
            project_id,
            c.name,
            crate::knowledge::name_key(&c.name),
            character.description,
            character.prompt_text,
            character.identity_notes,
            c.created_at,
            c.updated_at
        ],
    )
    .map_err(|err| name_taken(err, Entity::Character, &c.name))?;
    conn.execute(
        "DELETE FROM character_references WHERE character_id = ?1",
        [&c.id],
    )?;
    for (position, asset) in character.references.iter().enumerate() {
        conn.execute(
            "INSERT INTO character_references (character_id, asset_id, position) VALUES (?1, ?2, ?3)",
            params![c.id, asset, position as i64],
        )?;
    }
    Ok(())
}

pub fn get_character(conn: &Connection, id: &str) -> Result<CharacterRow, StoreError> {
    let mut character = conn
        .prepare_cached("SELECT c.*, p.slug FROM characters c JOIN projects p ON p.id = c.project_id WHERE c.id = ?1")?
        .query_row([id], |row| {
            Ok(CharacterRow {
                common: common(row)?,
                description: row.get("description")?,
                prompt_text: row.get("prompt_text")?,
                identity_notes: row.get("identity_notes")?,
                references: Vec::new(),
            })
        })?;
    character.references = references(conn, "character_references", "character_id", id)?;
    Ok(character)
}

// ---- reference sets ----

pub fn put_reference_set(
    conn: &Connection,
    project_id: &str,
    set: &ReferenceSetRow,
) -> Result<(), StoreError> {
    let c = &set.common;
    let assets: Vec<String> = set.items.iter().map(|item| item.asset_id.clone()).collect();
    check_assets(conn, project_id, &assets)?;
    conn.execute(
        "INSERT INTO reference_sets (id, project_id, name, name_key, description, kind, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET name = ?3, name_key = ?4, description = ?5, kind = ?6, updated_at = ?8",
        params![
            c.id,
            project_id,
            c.name,
            crate::knowledge::name_key(&c.name),
            set.description,
            set.kind,
            c.created_at,
            c.updated_at
        ],
    )
    .map_err(|err| name_taken(err, Entity::ReferenceSet, &c.name))?;
    conn.execute(
        "DELETE FROM reference_items WHERE reference_set_id = ?1",
        [&c.id],
    )?;
    for (position, item) in set.items.iter().enumerate() {
        conn.execute(
            "INSERT INTO reference_items (reference_set_id, asset_id, position, role, weight, notes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![c.id, item.asset_id, position as i64, item.role, item.weight, item.notes],
        )?;
    }
    Ok(())
}

pub fn get_reference_set(conn: &Connection, id: &str) -> Result<ReferenceSetRow, StoreError> {
    let mut set = conn
        .prepare_cached("SELECT r.*, p.slug FROM reference_sets r JOIN projects p ON p.id = r.project_id WHERE r.id = ?1")?
        .query_row([id], |row| {
            Ok(ReferenceSetRow {
                common: common(row)?,
                description: row.get("description")?,
                kind: row.get("kind")?,
                items: Vec::new(),
            })
        })?;
    let mut statement = conn.prepare_cached(
        "SELECT asset_id, role, weight, notes FROM reference_items WHERE reference_set_id = ?1 ORDER BY position",
    )?;
    let items = statement.query_map([id], |row| {
        Ok(ItemRow {
            asset_id: row.get(0)?,
            role: row.get(1)?,
            weight: row.get(2)?,
            notes: row.get(3)?,
        })
    })?;
    set.items = items.collect::<Result<_, _>>()?;
    Ok(set)
}

// ---- prompt templates ----

pub fn put_prompt_template(
    conn: &Connection,
    project_id: &str,
    template: &PromptTemplateRow,
) -> Result<(), StoreError> {
    let c = &template.common;
    let variables = serde_json::to_string(&template.variables)
        .map_err(|err| StoreError::Corrupt(format!("encoding variables: {err}")))?;
    conn.execute(
        "INSERT INTO prompt_templates (id, project_id, name, name_key, body, variables, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET name = ?3, name_key = ?4, body = ?5, variables = ?6, updated_at = ?8",
        params![
            c.id,
            project_id,
            c.name,
            crate::knowledge::name_key(&c.name),
            template.body,
            variables,
            c.created_at,
            c.updated_at
        ],
    )
    .map_err(|err| name_taken(err, Entity::PromptTemplate, &c.name))?;
    Ok(())
}

pub fn get_prompt_template(conn: &Connection, id: &str) -> Result<PromptTemplateRow, StoreError> {
    let (common, body, variables): (Common, String, String) = conn
        .prepare_cached("SELECT t.*, p.slug FROM prompt_templates t JOIN projects p ON p.id = t.project_id WHERE t.id = ?1")?
        .query_row([id], |row| Ok((common(row)?, row.get("body")?, row.get("variables")?)))?;
    let variables = serde_json::from_str(&variables)
        .map_err(|err| StoreError::Corrupt(format!("prompt template {id} variables: {err}")))?;
    Ok(PromptTemplateRow {
        common,
        body,
        variables,
    })
}
