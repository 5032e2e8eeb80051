; EPOS Bridge: per-user Windows installer (Inno Setup 6).
;
; Build (on Windows, from the repository root, after the PyInstaller bundle):
;   pyinstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller installer\epos-bridge.spec
;   iscc installer\windows\epos-bridge.iss            -> dist\epos-bridge-<version>-setup.exe
; The version is read from dist\epos-bridge\epos-bridge.exe (its VERSIONINFO comes from
; epos_bridge.__version__); override with iscc /DAppVersion=1.2.3.
;
; Per user, no administrator rights: installs to %LOCALAPPDATA%\Programs\EPOS Bridge, writes only
; HKCU. Unattended use (installer/README.md has the full list):
;   epos-bridge-<version>-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /TASKS="startatlogin" /LAUNCH=1
;   /SILENT shows progress only; /VERYSILENT shows nothing; /LAUNCH=1 starts the tray app after a
;   silent install (an interactive install offers a "Start EPOS Bridge now" box instead).
;   "%LOCALAPPDATA%\Programs\EPOS Bridge\unins000.exe" /VERYSILENT uninstalls.

#define AppName "EPOS Bridge"
#define AppExe "epos-bridge.exe"
#define RunValueName "epos-bridge"
#ifndef AppVersion
  #define AppVersion GetVersionNumbersString(AddBackslash(SourcePath) + "..\..\dist\epos-bridge\" + AppExe)
#endif

[Setup]
; Never change AppId: upgrades find the previous install by it.
AppId={{5D6C9B7E-2F43-4E0B-9A31-6C1E8E0B7A52}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=epos-bridge
VersionInfoVersion={#AppVersion}
; Paths below are relative to the repository root.
SourceDir=..\..
OutputDir=dist
OutputBaseFilename=epos-bridge-{#AppVersion}-setup
SetupIconFile=installer\build\app.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
PrivilegesRequired=lowest
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
WizardStyle=modern
Compression=lzma2
SolidCompression=yes
; An upgrade closes the running tray app (Restart Manager; forced when it does not answer).
; The bridge survives being stopped mid-request: Dojo retries and the idempotency store answers.
CloseApplications=force
RestartApplications=no
UsePreviousTasks=yes

[Tasks]
Name: "startatlogin"; Description: "Start {#AppName} when I log in (recommended on the till)"; GroupDescription: "Start-up:"

[InstallDelete]
; The bundle's libraries are replaced whole, so an upgrade never mixes two versions' DLLs.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "dist\epos-bridge\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "run"; WorkingDir: "{app}"; IconFilename: "{app}\{#AppExe}"; Comment: "Connects this venue's POS to Dojo"
Name: "{group}\{#AppName} command prompt (doctor)"; Filename: "{cmd}"; Parameters: "/k epos-bridge-cli.exe doctor"; WorkingDir: "{app}"; IconFilename: "{app}\{#AppExe}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"

[Registry]
; The same value epos_bridge/host/autostart.py writes from Settings -> Start at login (keep in step).
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "{#RunValueName}"; ValueData: """{app}\{#AppExe}"" run"; Flags: uninsdeletevalue; Tasks: startatlogin

[Run]
Filename: "{app}\{#AppExe}"; Parameters: "run"; Description: "Start {#AppName} now"; Flags: nowait postinstall skipifsilent
Filename: "{app}\{#AppExe}"; Parameters: "run"; Flags: nowait; Check: LaunchAfterSilentInstall

[UninstallRun]
; Stop this user's bridge so its files can be removed (the Restart Manager cannot close a tray-only app).
Filename: "{sys}\taskkill.exe"; Parameters: "/F /T /IM {#AppExe} /FI ""USERNAME eq {username}"""; Flags: runhidden waituntilterminated; RunOnceId: "StopEposBridge"

[Code]
const
  RunKey = 'Software\Microsoft\Windows\CurrentVersion\Run';
  RunValueName = '{#RunValueName}';

var
  HadStartAtLogin: Boolean;

function LaunchAfterSilentInstall: Boolean;
begin
  Result := WizardSilent and (ExpandConstant('{param:LAUNCH|0}') = '1');
end;

{ Every start-at-login entry of ours: the current value name, and any value (an older name, an
  older install folder) whose command runs an epos-bridge.exe. }
function IsOurEntry(const Name: String): Boolean;
var
  Data: String;
begin
  Result := CompareText(Name, RunValueName) = 0;
  if not Result and RegQueryStringValue(HKCU, RunKey, Name, Data) then
    Result := Pos('\epos-bridge.exe', Lowercase(Data)) > 0;
end;

procedure RemoveStartAtLoginEntries;
var
  Names: TArrayOfString;
  I: Integer;
begin
  if RegGetValueNames(HKCU, RunKey, Names) then
    for I := 0 to GetArrayLength(Names) - 1 do
      if IsOurEntry(Names[I]) then
        RegDeleteValue(HKCU, RunKey, Names[I]);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if CurStep = ssInstall then
  begin
    { Before [Registry] runs: drop old entries (other names, other folders); the task writes the
      current one. Start at login switched on in Settings survives the upgrade (ssPostInstall). }
    HadStartAtLogin := RegValueExists(HKCU, RunKey, RunValueName);
    RemoveStartAtLoginEntries;
  end;
  if (CurStep = ssPostInstall) and HadStartAtLogin and not WizardIsTaskSelected('startatlogin') then
    RegWriteStringValue(HKCU, RunKey, RunValueName, '"' + ExpandConstant('{app}\{#AppExe}') + '" run');
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usUninstall then
    RemoveStartAtLoginEntries;
end;
